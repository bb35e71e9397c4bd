"""The JSON shapes of links, orders and outbox messages, shared by the admin API and
``gateway … --json``.

One place, so the API, the CLI and the OpenAPI document cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gateway.adapters.db.models import AuditEntry, Link, Order, OutboxMessage
from gateway.domain.checkout import LinkState
from gateway.domain.money import format_minor
from gateway.services.admin_links import items_json
from gateway.services.link_listing import LinkPage, LinkSummary, admin_status
from gateway.services.links import LinkDetail


def iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def link_json(
    link: Link, state: str, status: str, previews: Mapping[str, int], duplicate: bool
) -> dict[str, Any]:
    return {
        "id": link.id,
        "ref": link.ref,
        "name": link.name,
        "email": link.email,
        "description": link.description,
        "amount_total": link.amount_total,
        "currency": link.currency,
        "amount_display": format_minor(link.amount_total, link.currency),
        "state": state,
        "status": status,
        "duplicate_payment": duplicate,
        "created_at": iso(link.created_at),
        "created_by": link.created_by,
        "valid_until": iso(link.valid_until),
        "revoked_at": iso(link.revoked_at),
        "revoked_by": link.revoked_by,
        "revoke_reason": link.revoke_reason,
        "replaces_id": link.replaces_id,
        # None: the payer's pages follow their browser, emails the configured default.
        "locale": link.locale,
        **reminders_json(link),
        "opens": {
            "count": link.open_count,
            "first_at": iso(link.first_opened_at),
            "last_at": iso(link.last_opened_at),
        },
        "previews": dict(previews),
        "email_delivery": {
            "sent_count": link.sent_count,
            "last_sent_at": iso(link.last_sent_at),
            "last_error": link.last_send_error,
        },
    }


def reminders_json(link: Link) -> dict[str, Any]:
    """A link's due date and reminders: ``reminders`` is its own schedule ("-3,1,7", "none") or
    null (the configured reminders.schedule); paused by an admin, stopped by the payer."""
    return {
        "due": link.due_date.isoformat() if link.due_date else None,
        "reminders": link.reminder_steps,
        "reminders_paused": link.reminders_paused,
        "reminders_stopped_at": iso(link.reminders_stopped_at),
    }


def summary_json(summary: LinkSummary) -> dict[str, Any]:
    return link_json(
        summary.link, summary.state, summary.status, summary.previews, summary.duplicate
    )


def page_json(page: LinkPage) -> dict[str, Any]:
    return {
        "links": [summary_json(s) for s in page.links],
        "total": page.total,
        "total_exact": page.total_exact,
        "limit": page.limit,
        "offset": page.offset,
        "next_cursor": page.next_cursor,
        "next_offset": page.next_offset,
    }


def order_json(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "link_id": order.link_id,
        "status": order.status,
        "amount_total": order.amount_total,
        "currency": order.currency,
        "created_at": iso(order.created_at),
        "updated_at": iso(order.updated_at),
        "paid_at": iso(order.paid_at),
        "stripe_session_id": order.stripe_session_id,
        "payment_intent_id": order.payment_intent_id,
        "cancel_reason": order.cancel_reason,
        "duplicate_of": order.duplicate_of,
        "refunded_amount": order.refunded_amount,
        "disputed": order.disputed,
        # "stripe", or how a person recorded a payment made outside Stripe (issue 16).
        "method": order.method,
        "payment_note": order.payment_note,
        "recorded_by": order.recorded_by,
    }


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "at": iso(entry.at),
        "action": entry.action,
        "from": entry.from_status,
        "to": entry.to_status,
        "actor": entry.actor,
        "order_id": entry.order_id,
        "detail": entry.detail,
    }


def detail_json(detail: LinkDetail) -> dict[str, Any]:
    status = admin_status(LinkState(detail.state), detail.orders, detail.link.open_count)
    data = link_json(
        detail.link,
        detail.state,
        status,
        {p.bot_name: p.count for p in detail.previews},
        any(o.duplicate_of for o in detail.orders),
    )
    data["url"] = detail.url
    data["items"] = items_json(detail.items, detail.link.currency)
    data["orders"] = [order_json(o) for o in detail.orders]
    data["audit"] = [audit_json(a) for a in detail.audit]
    return data


def outbox_json(message: OutboxMessage, *, payload: bool = False) -> dict[str, Any]:
    """One outbox message, as ``gateway mail`` and ``/admin/api/mail`` show it. Never its body
    (it is built when sent, from the rows as they are then); ``payload``: with what the row
    carries for building it (``show`` only)."""
    data: dict[str, Any] = {
        "id": message.id,
        "kind": message.kind,
        "subject": message.subject,
        "state": message.state,
        "recipient": message.recipient,
        "locale": message.locale,
        "link_id": message.link_id,
        "order_id": message.order_id,
        "message_id": message.message_id,
        "attempts": message.attempts,
        "crash_resends": message.crash_resends,
        "last_error": message.last_error,
        "next_attempt_at": iso(message.next_attempt_at),
        "created_at": iso(message.created_at),
        "updated_at": iso(message.updated_at),
        "sent_at": iso(message.sent_at),
    }
    if payload:
        try:
            data["payload"] = json.loads(message.payload or "{}")
        except ValueError:  # written by this code as JSON; shown as stored if ever not
            data["payload"] = message.payload
    return data
