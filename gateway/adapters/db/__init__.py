from gateway.adapters.db.engine import Database, create_database
from gateway.adapters.db.models import (
    AuditEntry,
    Base,
    Link,
    LinkItem,
    LinkPreview,
    Order,
    WebhookEvent,
)

__all__ = [
    "AuditEntry",
    "Base",
    "Database",
    "Link",
    "LinkItem",
    "LinkPreview",
    "Order",
    "WebhookEvent",
    "create_database",
]
