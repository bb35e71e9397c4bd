"""Fixtures shared by the admin, email and observability tests."""

from tests.admin.support import mail_sink

__all__ = ["mail_sink"]
