"""The OpenAPI 3.1 document of the admin API, served at ``/admin/api/openapi.json``.

Written by hand next to the handlers; ``tests/admin/test_openapi.py`` keeps it true: every route
is documented and every documented path exists, and real responses are checked against the
schemas below.
"""

from __future__ import annotations

from typing import Any

from gateway.domain.locales import OFFERED
from gateway.domain.outbox import Kind, State
from gateway.domain.support import Fix as SupportFix
from gateway.domain.support import Kind as SupportKind
from gateway.services.link_listing import SORTS, STATUSES
from gateway.services.link_search import KINDS as SEARCH_KINDS

_NULLABLE_STR = {"type": ["string", "null"]}
_ERROR_CODES = [
    "unauthorized",
    "too_many_failures",
    "validation_failed",
    "bulk_invalid",
    "bad_file",
    "bad_request",
    "too_large",
    "bulk_interrupted",
    "not_found",
    "email_not_configured",
    "link_not_sendable",
    "email_failed",
    "not_implemented",
    "wrong_state",
    "payment_provider_unavailable",
    "internal_error",
    "already_refunded",
    "refund_in_progress",
    "not_refundable",
    "already_paid",
    "stripe_refused",
]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    # Every call can meet a wrong key (401) and the brake on repeated wrong keys (429).
    return {str(s): {"$ref": "#/components/responses/Error"} for s in (401, 429, *statuses)}


def _param(name: str, where: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": description,
    }


_LINK_ID = _param("id", "path", {"type": "string", "pattern": "^lk_[A-Za-z0-9_-]{12}$"}, "link id")
_PAGING = [
    _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 500}, "page size"),
    _param("offset", "query", {"type": "integer", "minimum": 0}, "rows to skip"),
]
_MESSAGE_ID = _param(
    "id", "path", {"type": "string", "pattern": "^ms_[A-Za-z0-9_-]{16}$"}, "outbox message id"
)
_FLAG = {"type": "boolean"}
_MANUAL_METHODS = ("cash", "bank_transfer", "other")
_ORDER_ID = _param(
    "id", "path", {"type": "string", "pattern": "^ord_[A-Za-z0-9_-]{16}$"}, "order id"
)
_ORPHAN_ID = _param(
    "id", "path", {"type": "string", "pattern": "^op_[A-Za-z0-9_-]{16}$"}, "orphan payment id"
)
# A link's language as stored: an offered locale, or null (none chosen by the issuer).
_LOCALE = {
    "type": ["string", "null"],
    "enum": [*OFFERED, None],
    "description": (
        "the payer's language. null: none chosen, so the payer's pages follow their browser"
        " (Accept-Language, among the offered), else checkout.default_locale; emails and link"
        " previews use checkout.default_locale"
    ),
}
# A link's one status; ``duplicate`` is a flag the list can also filter on (added below).
_STATUSES = [status for status in STATUSES if status != "duplicate"]
_ITEM = {
    "type": "object",
    "required": ["description", "amount", "quantity", "amount_display"],
    "properties": {
        "description": {"type": "string"},
        "amount": {"type": "integer", "description": "minor units, per unit"},
        "quantity": {"type": "integer"},
        "amount_display": {"type": "string", "description": "e.g. 150.00 EUR"},
    },
}
# What was understood from a request or a row, shown back for a person to confirm.
_UNDERSTOOD = {
    "name": {"type": "string"},
    "payer_email": {"type": "string", "description": "where the link is (or would be) sent"},
    "items": {"type": "array", "items": _ITEM},
    "amount_total": {"type": "integer", "description": "minor units"},
    "currency": {"type": "string"},
    "total": {"type": "string", "description": "the total as a person reads it: 150.00 EUR"},
    "locale": _LOCALE,
    "due": {
        "type": ["string", "null"],
        "description": "the day payment is due (YYYY-MM-DD, organisation's time zone)",
    },
    "reminders": {
        "type": ["string", "null"],
        "description": 'the link\'s reminder days ("-3,1,7" or "none"); null: reminders.schedule',
    },
}
# A link's due date and reminders as stored (presenters.reminders_json).
_REMINDERS = {
    "due": _UNDERSTOOD["due"],
    "reminders": _UNDERSTOOD["reminders"],
    "reminders_paused": {"type": "boolean", "description": "paused by an admin"},
    "reminders_stopped_at": {
        **_NULLABLE_STR,
        "description": "when the payer stopped reminders for this payment",
    },
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": _ERROR_CODES},
                    "message": {"type": "string"},
                    "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                    "rows": {"type": "array", "items": _ref("BulkRow")},
                    "created": {"type": "integer", "description": "bulk_interrupted"},
                    "remaining": {"type": "integer", "description": "bulk_interrupted"},
                },
            }
        },
    },
    "NewLink": {
        "type": "object",
        "required": ["email", "name", "items"],
        "properties": {
            "email": {"type": "string"},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "currency": {"type": "string", "description": "ISO code, default from config"},
            "items": {
                "type": "array",
                "items": {
                    "oneOf": [
                        {"type": "string", "description": '"Spring fee=150.00" or "Kit=25x2"'},
                        {
                            "type": "object",
                            "required": ["description", "amount"],
                            "properties": {
                                "description": {"type": "string"},
                                "amount": {
                                    "type": ["string", "number"],
                                    "description": "major units: 150.00 or 1,500.00 (150,00 and"
                                    " 1,500 are refused as ambiguous)",
                                },
                                "quantity": {"type": "integer"},
                            },
                        },
                    ]
                },
            },
            "amount": {"type": ["string", "number"], "description": "one item, instead of items"},
            "ref": {"type": "string"},
            "valid_for": {"type": ["string", "number"], "description": "e.g. 30d, or seconds"},
            "locale": {
                **_LOCALE,
                "description": (
                    f"the payer's language, one of {', '.join(OFFERED)}; any case and _ or -"
                    " are accepted (pt_br is stored as pt-BR); another value is a 422 naming"
                    " the offered ones. Omitted, empty or null: the link has no locale, so the"
                    " payer's pages follow their browser (Accept-Language, among the offered),"
                    " else checkout.default_locale; emails and link previews use"
                    " checkout.default_locale"
                ),
            },
            "due": {
                "type": ["string", "null"],
                "description": (
                    "the day payment is due: a date (2027-01-15) or a duration from now like"
                    " valid_for (14d), read in checkout.timezone; today or later, and not after"
                    " the link stops working. Without one, no reminders"
                ),
            },
            "reminders": {
                "type": ["string", "null"],
                "description": (
                    'reminder days relative to the due date, "-3,1,7" (at most 3, whole days,'
                    ' distinct; none after the link stops working), or "none". Omitted: the'
                    " configured reminders.schedule. Needs a due date"
                ),
            },
            "send": {"type": "boolean", "description": "email it to the payer now"},
            "allow_duplicate_ref": {
                "type": "boolean",
                "description": "issue a second live link for a ref that already has one",
            },
        },
    },
    "IssuedLink": {
        "type": "object",
        "description": (
            "201: a new link. 200: the ref already had a live link, which is returned"
            " (existing: true), with what differs from the request"
        ),
        "required": [
            "id",
            "url",
            "token",
            "ref",
            "status",
            "existing",
            "name",
            "payer_email",
            "items",
            "amount_total",
            "currency",
            "total",
            "amount_display",
            "locale",
        ],
        "properties": {
            "id": {"type": "string"},
            "url": {"type": "string"},
            "token": {"type": "string"},
            "ref": {"type": "string"},
            "status": {"type": "string", "enum": ["created", "existing"]},
            "existing": {"type": "boolean"},
            **_UNDERSTOOD,
            "amount_display": {"type": "string"},
            "differs": {"type": "array", "items": {"type": "string"}},
            "email": _ref("EmailOutcome"),
        },
    },
    "EmailOutcome": {
        "type": "object",
        "required": ["sent", "error"],
        "properties": {
            "sent": {"type": "boolean"},
            "error": _NULLABLE_STR,
            "skipped": {"type": "string", "description": "why an existing link was not emailed"},
        },
    },
    "Link": {
        "type": "object",
        "required": [
            "id",
            "ref",
            "name",
            "email",
            "amount_total",
            "currency",
            "state",
            "status",
            "duplicate_payment",
            "created_at",
            "valid_until",
            "locale",
            "opens",
            "previews",
            "email_delivery",
        ],
        "properties": {
            "id": {"type": "string"},
            "ref": {"type": "string"},
            "name": {"type": "string"},
            "email": {"type": "string"},
            "description": {"type": "string"},
            "amount_total": {"type": "integer"},
            "currency": {"type": "string"},
            "amount_display": {"type": "string"},
            "state": {
                "type": "string",
                "enum": ["payable", "paid", "processing", "revoked", "expired"],
                "description": "what the payer's page shows",
            },
            "status": {
                "type": "string",
                "enum": _STATUSES,
                "description": (
                    "the admin's view: a payable link is issued, opened, pending, or failed (a"
                    " delayed payment such as a bank debit failed and nothing was paid since)"
                ),
            },
            "duplicate_payment": {"type": "boolean"},
            "created_at": {"type": "string"},
            "created_by": {"type": "string"},
            "valid_until": {"type": "string"},
            "revoked_at": _NULLABLE_STR,
            "revoked_by": _NULLABLE_STR,
            "revoke_reason": _NULLABLE_STR,
            "replaces_id": _NULLABLE_STR,
            "locale": _LOCALE,
            **_REMINDERS,
            "opens": {
                "type": "object",
                "required": ["count", "first_at", "last_at"],
                "properties": {
                    "count": {"type": "integer"},
                    "first_at": _NULLABLE_STR,
                    "last_at": _NULLABLE_STR,
                },
            },
            "previews": {
                "type": "object",
                "description": "bot previews by bot name",
                "additionalProperties": {"type": "integer"},
            },
            "email_delivery": {
                "type": "object",
                "required": ["sent_count", "last_sent_at", "last_error"],
                "properties": {
                    "sent_count": {"type": "integer"},
                    "last_sent_at": _NULLABLE_STR,
                    "last_error": _NULLABLE_STR,
                },
            },
        },
    },
    "LinkDetail": {
        "allOf": [
            _ref("Link"),
            {
                "type": "object",
                "required": ["url", "items", "orders", "audit"],
                "properties": {
                    "url": {"type": "string"},
                    "items": {"type": "array", "items": _ITEM},
                    "orders": {"type": "array", "items": _ref("Order")},
                    "audit": {"type": "array", "items": _ref("AuditEntry")},
                },
            },
        ]
    },
    "LinkPage": {
        "type": "object",
        "required": [
            "links",
            "total",
            "total_exact",
            "limit",
            "offset",
            "next_cursor",
            "next_offset",
        ],
        "properties": {
            "links": {"type": "array", "items": _ref("Link")},
            "total": {
                "type": "integer",
                "description": "matching links, counted up to 1,000 (see total_exact)",
            },
            "total_exact": {"type": "boolean", "description": "false: at least total"},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "pass as cursor for the next page; null on the last page",
            },
            "next_offset": {"type": ["integer", "null"]},
            "search": {
                "type": "object",
                "description": "with q: how the query was read (problem: why nothing matches)",
                "required": ["kind", "understood", "problem"],
                "properties": {
                    "kind": {"type": "string", "enum": list(SEARCH_KINDS)},
                    "understood": {"type": "string"},
                    "problem": _NULLABLE_STR,
                },
            },
        },
    },
    "Order": {
        "type": "object",
        "required": ["id", "link_id", "status", "amount_total", "currency", "created_at"],
        "properties": {
            "id": {"type": "string"},
            "link_id": {"type": "string"},
            "status": {
                "type": "string",
                "enum": [
                    "pending",
                    "processing",
                    "paid",
                    "failed",
                    "refunded",
                    "canceled",
                    "expired",
                ],
            },
            "amount_total": {"type": "integer"},
            "currency": {"type": "string"},
            "created_at": {"type": "string"},
            "updated_at": {"type": "string"},
            "paid_at": _NULLABLE_STR,
            "stripe_session_id": _NULLABLE_STR,
            "payment_intent_id": _NULLABLE_STR,
            "cancel_reason": _NULLABLE_STR,
            "duplicate_of": _NULLABLE_STR,
            "refunded_amount": {"type": "integer"},
            "disputed": {"type": "boolean"},
            "method": {
                "type": "string",
                "enum": ["stripe", *_MANUAL_METHODS],
                "description": "stripe, or how a payment made outside Stripe was received",
            },
            "payment_note": {
                **_NULLABLE_STR,
                "description": "the note of a payment recorded outside Stripe",
            },
            "recorded_by": {
                **_NULLABLE_STR,
                "description": "who recorded a payment made outside Stripe",
            },
        },
    },
    "Refundable": {
        "type": "object",
        "required": ["order_id", "link_id", "amount_total", "refunded", "refundable", "currency"],
        "properties": {
            "order_id": {"type": "string"},
            "link_id": {"type": "string"},
            "amount_total": {"type": "integer"},
            "refunded": {"type": "integer", "description": "minor units refunded so far"},
            "refundable": {
                "type": "integer",
                "description": "minor units still refundable: send it back as expected_refundable",
            },
            "currency": {"type": "string"},
            "refundable_display": {"type": "string"},
            "method": {"type": "string"},
            "status": {"type": "string"},
        },
    },
    "RefundRequest": {
        "type": "object",
        "required": ["reason"],
        "properties": {
            "amount": {
                "type": ["string", "integer"],
                "description": (
                    "major units as typed (50.00; 50,00 and 1,500 are refused as ambiguous);"
                    " omitted: all that is still refundable"
                ),
            },
            "reason": {"type": "string", "description": "why (at most 500 characters), audited"},
            "expected_refundable": {
                "type": "integer",
                "description": (
                    "the refundable amount (minor units) the person saw; another value now is a"
                    " 409 already_refunded saying how much was refunded meanwhile"
                ),
            },
        },
    },
    "RefundResult": {
        "type": "object",
        "required": [
            "id",
            "order_id",
            "link_id",
            "amount",
            "currency",
            "refunded_total",
            "refundable",
            "stripe_refund_id",
            "order_status",
        ],
        "properties": {
            "id": {"type": "string", "description": "the refund's row here (rf_…)"},
            "order_id": {"type": "string"},
            "link_id": {"type": "string"},
            "amount": {"type": "integer"},
            "currency": {"type": "string"},
            "amount_display": {"type": "string"},
            "refunded_total": {"type": "integer"},
            "refundable": {"type": "integer"},
            "refundable_display": {"type": "string"},
            "stripe_refund_id": {"type": "string"},
            "order_status": {"type": "string"},
        },
    },
    "MarkPaidRequest": {
        "type": "object",
        "required": ["amount", "method", "note"],
        "properties": {
            "amount": {
                "type": ["string", "integer"],
                "description": "major units as typed; must be the link's total",
            },
            "method": {"type": "string", "enum": list(_MANUAL_METHODS)},
            "note": {"type": "string", "description": "at most 500 characters, audited"},
        },
    },
    "MarkedPaid": {
        "type": "object",
        "required": [
            "order_id",
            "link_id",
            "amount",
            "currency",
            "method",
            "note",
            "recorded_by",
            "paid_at",
            "changed",
        ],
        "properties": {
            "order_id": {"type": "string"},
            "link_id": {"type": "string"},
            "amount": {"type": "integer"},
            "currency": {"type": "string"},
            "amount_display": {"type": "string"},
            "method": {"type": "string", "enum": list(_MANUAL_METHODS)},
            "note": {"type": "string"},
            "recorded_by": {"type": "string"},
            "paid_at": {"type": "string"},
            "changed": {
                "type": "boolean",
                "description": "false: the same payment was recorded already",
            },
        },
    },
    "Orphan": {
        "type": "object",
        "required": [
            "id",
            "payment_intent_id",
            "session_id",
            "amount",
            "currency",
            "link_id",
            "order_id",
            "found_at",
            "attached",
            "attached_at",
            "attached_by",
            "attached_order_id",
        ],
        "properties": {
            "id": {"type": "string"},
            "payment_intent_id": {"type": "string"},
            "session_id": _NULLABLE_STR,
            "amount": {"type": "integer"},
            "currency": {"type": "string"},
            "amount_display": {"type": "string"},
            "link_id": {**_NULLABLE_STR, "description": "the link the payment's metadata names"},
            "order_id": {**_NULLABLE_STR, "description": "the order its metadata names"},
            "paid_at": _NULLABLE_STR,
            "found_at": {"type": "string"},
            "attached": {"type": "boolean"},
            "attached_at": _NULLABLE_STR,
            "attached_by": _NULLABLE_STR,
            "attach_reason": _NULLABLE_STR,
            "attached_order_id": _NULLABLE_STR,
        },
    },
    "OrphanList": {
        "type": "object",
        "required": ["orphans"],
        "properties": {"orphans": {"type": "array", "items": _ref("Orphan")}},
    },
    "Attached": {
        "allOf": [
            _ref("Orphan"),
            {
                "type": "object",
                "required": ["changed"],
                "properties": {
                    "changed": {"type": "boolean", "description": "false: attached already"},
                    "duplicate_of": {
                        **_NULLABLE_STR,
                        "description": "the link was paid meanwhile: a duplicate payment",
                    },
                },
            },
        ]
    },
    "SupportDiagnosis": {
        "type": "object",
        "required": ["link_id", "kind", "sentence", "facts", "fixes", "reply", "reply_locale"],
        "properties": {
            "link_id": {"type": "string"},
            "kind": {"type": "string", "enum": [k.value for k in SupportKind]},
            "sentence": {"type": "string", "description": "what happened, for a support person"},
            "facts": {"type": "object", "description": "amount, dates, reference, order ids"},
            "order_id": {**_NULLABLE_STR, "description": "the order the diagnosis is about"},
            "refundable": {"type": "integer", "description": "of that order (a duplicate)"},
            "orphan_ids": {"type": "array", "items": {"type": "string"}},
            "event_ids": {
                "type": "array",
                "items": {"type": "string"},
                "description": "webhook events of its orders not applied",
            },
            "fixes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["fix", "label"],
                    "properties": {
                        "fix": {"type": "string", "enum": [f.value for f in SupportFix]},
                        "label": {"type": "string"},
                    },
                },
            },
            "reply_locale": {"type": "string"},
            "reply": {"type": "string", "description": "to send the payer, in the link's language"},
        },
    },
    "SupportFound": {
        "type": "object",
        "required": ["query", "kind", "label", "problem", "asked_stripe", "more", "results"],
        "properties": {
            "query": {"type": "string"},
            "kind": {"type": "string", "description": "how the query was read"},
            "label": {"type": "string"},
            "problem": {**_NULLABLE_STR, "description": "why nothing can match"},
            "asked_stripe": {"type": "boolean"},
            "more": {"type": "boolean", "description": "more links match than are shown"},
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["source", "note", "diagnosis"],
                    "properties": {
                        "source": {"type": "string", "enum": ["database", "stripe"]},
                        "note": _NULLABLE_STR,
                        "diagnosis": {"oneOf": [_ref("SupportDiagnosis"), {"type": "null"}]},
                    },
                },
            },
        },
    },
    "AuditEntry": {
        "type": "object",
        "required": ["at", "action", "actor"],
        "properties": {
            "at": {"type": "string"},
            "action": {"type": "string"},
            "from": _NULLABLE_STR,
            "to": _NULLABLE_STR,
            "actor": {"type": "string", "description": "visitor, webhook, reconciler, admin:NAME"},
            "order_id": _NULLABLE_STR,
            "detail": _NULLABLE_STR,
        },
    },
    "BulkRow": {
        "type": "object",
        "required": ["row", "ref", "status"],
        "properties": {
            "row": {
                "type": "integer",
                "description": "CSV: the spreadsheet's row (header = 1); JSON: position from 1",
            },
            "ref": {"type": "string"},
            **_UNDERSTOOD,
            "status": {
                "type": "string",
                "enum": ["would_create", "created", "existing", "invalid", "skipped"],
            },
            "errors": {"type": "object", "additionalProperties": {"type": "string"}},
            "id": {"type": "string"},
            "url": {"type": "string"},
            "differs": {"type": "array", "items": {"type": "string"}},
            "email": _ref("EmailOutcome"),
        },
    },
    "BulkReport": {
        "type": "object",
        "required": [
            "dry_run",
            "ok",
            "created",
            "would_create",
            "existing",
            "invalid",
            "skipped",
            "emails_sent",
            "emails_failed",
            "rows",
        ],
        "properties": {
            "dry_run": {"type": "boolean"},
            "ok": {"type": "boolean"},
            "created": {"type": "integer"},
            "would_create": {"type": "integer"},
            "existing": {"type": "integer"},
            "invalid": {"type": "integer"},
            "skipped": {"type": "integer"},
            "emails_sent": {"type": "integer"},
            "emails_failed": {"type": "integer"},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "rows": {"type": "array", "items": _ref("BulkRow")},
        },
    },
    "Revoked": {
        "type": "object",
        "required": ["id", "revoked", "changed"],
        "properties": {
            "id": {"type": "string"},
            "revoked": {"type": "boolean"},
            "changed": {"type": "boolean", "description": "false when it was already revoked"},
        },
    },
    "SendResult": {
        "type": "object",
        "required": ["link_id", "sent", "error"],
        "properties": {
            "link_id": {"type": "string"},
            "sent": {"type": "boolean"},
            "error": _NULLABLE_STR,
        },
    },
    "OrderList": {
        "type": "object",
        "required": ["orders"],
        "properties": {"orders": {"type": "array", "items": _ref("Order")}},
    },
    "OutboxMessage": {
        "type": "object",
        "description": (
            "A message the gateway owes someone, never its body (built when sent, from the"
            " rows as they are then)"
        ),
        "required": [
            "id",
            "kind",
            "subject",
            "state",
            "recipient",
            "locale",
            "link_id",
            "order_id",
            "message_id",
            "attempts",
            "crash_resends",
            "last_error",
            "next_attempt_at",
            "created_at",
            "updated_at",
            "sent_at",
        ],
        "properties": {
            "id": {"type": "string"},
            "kind": {"type": "string", "enum": [k.value for k in Kind]},
            "subject": {
                "type": "string",
                "description": "what it is about, unique within its kind (an order, a link)",
            },
            "state": {"type": "string", "enum": [s.value for s in State]},
            "recipient": {"type": "string"},
            "locale": {"type": "string"},
            "link_id": _NULLABLE_STR,
            "order_id": _NULLABLE_STR,
            "message_id": {"type": "string", "description": "the Message-ID of every send"},
            "attempts": {"type": "integer"},
            "crash_resends": {
                "type": "integer",
                "description": "sends after a sender died mid-send (at most 1)",
            },
            "last_error": _NULLABLE_STR,
            "next_attempt_at": {"type": "string"},
            "created_at": {"type": "string"},
            "updated_at": {"type": "string"},
            "sent_at": _NULLABLE_STR,
        },
    },
    "OutboxMessageDetail": {
        "allOf": [
            _ref("OutboxMessage"),
            {
                "type": "object",
                "required": ["payload"],
                "properties": {
                    "payload": {
                        "type": "object",
                        "description": "what the row carries for building the message",
                    }
                },
            },
        ]
    },
    "MailPage": {
        "type": "object",
        "required": ["messages", "limit", "next_cursor"],
        "properties": {
            "messages": {"type": "array", "items": _ref("OutboxMessage")},
            "limit": {"type": "integer"},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "pass as cursor for the next page; null on the last",
            },
        },
    },
    "ReconcileReport": {
        "type": "object",
        "required": ["ran", "fixes", "errors"],
        "properties": {
            "ran": {"type": "boolean"},
            "fixes": {"type": "integer"},
            "errors": {"type": "array", "items": {"type": "string"}},
        },
    },
}

PATHS: dict[str, Any] = {
    "/admin/api/openapi.json": {
        "get": {
            "operationId": "admin_openapi",
            "summary": "This document (no key needed)",
            "security": [],
            "responses": {"200": {"description": "OpenAPI document"}},
        }
    },
    "/admin/api/links": {
        "post": {
            "operationId": "admin_create_link",
            "summary": "Issue one link (optionally email it)",
            "description": (
                "A ref that already has a live (not revoked) link is not issued again: that"
                " link is returned with 200 and existing: true, unless allow_duplicate_ref."
            ),
            "requestBody": {"content": {"application/json": {"schema": _ref("NewLink")}}},
            "responses": {
                "200": _json(_ref("IssuedLink"), "the ref's existing live link"),
                "201": _json(_ref("IssuedLink"), "issued"),
                **_errors(400, 409, 422),
            },
        },
        "get": {
            "operationId": "admin_list_links",
            "summary": "List links, newest first, with opens, previews and delivery",
            "parameters": [
                _param(
                    "status",
                    "query",
                    {"type": "string", "enum": [*_STATUSES, "duplicate", "previewed"]},
                    "failed: a delayed payment failed, nothing paid since; duplicate: a second"
                    " payment arrived for the link; previewed: issued, fetched by preview bots"
                    " only",
                ),
                _param(
                    "q",
                    "query",
                    {"type": "string", "maxLength": 320},
                    "the console's search box: payer name or email, reference (or ref:PREFIX),"
                    " link id, payment URL or token, Stripe cs_/pi_ id; the answer's search says"
                    " how it was read",
                ),
                _param(
                    "sort",
                    "query",
                    {"type": "string", "enum": list(SORTS)},
                    "created_desc (default, pages by cursor); the others page by offset (up to"
                    " 10,000)",
                ),
                _param("ref_prefix", "query", {"type": "string"}, "e.g. 2026-04/"),
                _param("created_from", "query", {"type": "string"}, "ISO date or date-time"),
                _param(
                    "created_to", "query", {"type": "string"}, "exclusive; a date includes the day"
                ),
                _param(
                    "cursor",
                    "query",
                    {"type": "string"},
                    "a page's next_cursor: the next page at constant cost (wins over offset)",
                ),
                *_PAGING,
            ],
            "responses": {"200": _json(_ref("LinkPage"), "a page of links"), **_errors(422)},
        },
    },
    "/admin/api/links/bulk": {
        "post": {
            "operationId": "admin_bulk_links",
            "summary": "Issue links from a CSV (text/csv) or JSON rows (up to 100,000)",
            "description": (
                "Rows are keyed by ref: a ref that already has a link (not revoked) is reported"
                " as existing and not created again. With send, links never sent successfully"
                " are emailed; resend emails existing ones again too. Any invalid row makes the"
                " whole run fail with nothing created, unless skip_invalid. Valid files are"
                " written in transactions of 2,000 rows; if the database fails mid-run the"
                " answer is 500 bulk_interrupted with the rows created so far, and running the"
                " same file again creates the rest. CSV: UTF-8 (or Windows-1252, with a"
                " warning), comma, semicolon or tab, cells up to 10 KB."
            ),
            "parameters": [
                _param("dry_run", "query", _FLAG, "validate and report only"),
                _param("skip_invalid", "query", _FLAG, "create the valid rows anyway"),
                _param("send", "query", _FLAG, "email links not yet sent"),
                _param("resend", "query", _FLAG, "with send: email existing links again"),
            ],
            "requestBody": {
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/json": {
                        "schema": {"type": "array", "items": _ref("NewLink")},
                    },
                }
            },
            "responses": {
                "200": _json(_ref("BulkReport"), "dry run, or nothing new"),
                "201": _json(_ref("BulkReport"), "links created"),
                **_errors(400, 409, 413, 422, 500),
            },
        }
    },
    "/admin/api/links/{id}": {
        "get": {
            "operationId": "admin_show_link",
            "summary": "One link with items, orders, audit trail, opens and previews",
            "parameters": [_LINK_ID],
            "responses": {"200": _json(_ref("LinkDetail"), "the link"), **_errors(404)},
        }
    },
    "/admin/api/links/{id}/revoke": {
        "post": {
            "operationId": "admin_revoke_link",
            "summary": "Withdraw a link (its pending attempt is canceled)",
            "parameters": [_LINK_ID],
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {
                        "schema": {"type": "object", "properties": {"reason": {"type": "string"}}}
                    }
                },
            },
            "responses": {"200": _json(_ref("Revoked"), "revoked"), **_errors(404, 422)},
        }
    },
    "/admin/api/links/{id}/resend": {
        "post": {
            "operationId": "admin_resend_link",
            "summary": "Email the link to the payer's address on file again",
            "parameters": [_LINK_ID],
            "responses": {
                "200": _json(_ref("SendResult"), "sent"),
                **_errors(404, 409, 502),
            },
        }
    },
    "/admin/api/links/{id}/reminders": {
        "post": {
            "operationId": "admin_link_reminders",
            "summary": "Pause or resume one link's reminders",
            "parameters": [_LINK_ID],
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["paused"],
                            "properties": {"paused": {"type": "boolean"}},
                        }
                    }
                }
            },
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["id", "changed", *_REMINDERS],
                        "properties": {
                            "id": {"type": "string"},
                            "changed": {"type": "boolean"},
                            **_REMINDERS,
                        },
                    },
                    "the link's reminders now",
                ),
                **_errors(404, 422),
            },
        }
    },
    "/admin/api/orders": {
        "get": {
            "operationId": "admin_list_orders",
            "summary": "List checkout attempts, newest first",
            "parameters": [
                _param(
                    "status",
                    "query",
                    SCHEMAS["Order"]["properties"]["status"],
                    "order status",
                ),
                *_PAGING,
            ],
            "responses": {"200": _json(_ref("OrderList"), "orders"), **_errors(422)},
        }
    },
    "/admin/api/orders/{id}/refund": {
        "get": {
            "operationId": "admin_order_refundable",
            "summary": "What is still refundable of an order (the form's guard)",
            "parameters": [_ORDER_ID],
            "responses": {"200": _json(_ref("Refundable"), "refundable now"), **_errors(404)},
        },
        "post": {
            "operationId": "admin_refund_order",
            "summary": "Refund all or part of a paid order through Stripe",
            "description": (
                "The refundable amount is computed from the refunds stored here; with"
                " expected_refundable, a different one is a 409 already_refunded (two people"
                " pressing at once refund once). The intent is stored before Stripe is asked,"
                " with an idempotency key from the order, the refundable amount and an attempt"
                " that moves on only once Stripe is known to have made nothing. 409"
                " refund_in_progress while another refund of the order is being made,"
                " not_refundable for an unpaid order or one paid outside Stripe; 422 for an"
                " amount above what is refundable; 502 stripe_refused and 503"
                " payment_provider_unavailable say what was recorded (nothing Stripe did not"
                " do). The payer is sent the refund message."
            ),
            "parameters": [_ORDER_ID],
            "requestBody": {"content": {"application/json": {"schema": _ref("RefundRequest")}}},
            "responses": {
                "200": _json(_ref("RefundResult"), "refunded"),
                **_errors(400, 404, 409, 422, 502, 503),
            },
        },
    },
    "/admin/api/links/{id}/mark-paid": {
        "post": {
            "operationId": "admin_mark_paid",
            "summary": "Record a payment made outside Stripe (cash, bank transfer)",
            "description": (
                "A paid order without a Stripe session: the link is paid everywhere (the payer's"
                " page, Pay refuses). A pending Stripe attempt is retired first; if Stripe says"
                " it was paid meanwhile, that payment is recorded and this one refused (409"
                " already_paid). The same request again answers 200 with changed false; any"
                " other payment on the link is a 409 already_paid; a revoked link 409"
                " wrong_state. The payer is sent the receipt."
            ),
            "parameters": [_LINK_ID],
            "requestBody": {"content": {"application/json": {"schema": _ref("MarkPaidRequest")}}},
            "responses": {
                "200": _json(_ref("MarkedPaid"), "recorded already"),
                "201": _json(_ref("MarkedPaid"), "recorded"),
                **_errors(400, 404, 409, 422, 503),
            },
        }
    },
    "/admin/api/support/find": {
        "get": {
            "operationId": "admin_support_find",
            "summary": "Find the links a payer's message names, each diagnosed with a reply",
            "description": (
                "q: an email, a name, a reference or prefix, a link id, a payment URL or token,"
                " or a Stripe id (cs_, pi_, ch_, re_, evt_, dp_). The database first, then Stripe"
                " where it has nothing; each result's source says which."
            ),
            "parameters": [_param("q", "query", {"type": "string"}, "what the payer sent")],
            "responses": {
                "200": _json(_ref("SupportFound"), "the links found"),
                **_errors(400, 422),
            },
        }
    },
    "/admin/api/orphans": {
        "get": {
            "operationId": "admin_list_orphans",
            "summary": "Payments Stripe holds with this gateway's metadata and no order here",
            "description": "Found by the reconciler; newest first (at most 500).",
            "parameters": [
                _param("attached", "query", _FLAG, "true: attached ones; false: waiting ones"),
            ],
            "responses": {"200": _json(_ref("OrphanList"), "orphan payments"), **_errors(422)},
        }
    },
    "/admin/api/orphans/{id}/attach": {
        "post": {
            "operationId": "admin_attach_orphan",
            "summary": "Record an orphan payment on the link it names (and send the receipt)",
            "description": (
                "The order is rebuilt from Stripe's session and paid through the webhook's"
                " transition; attaching again changes nothing (changed false). 409 wrong_state"
                " when the link is unknown here or Stripe has no paid session for it."
            ),
            "parameters": [_ORPHAN_ID],
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["reason"],
                            "properties": {"reason": {"type": "string"}},
                        }
                    }
                }
            },
            "responses": {
                "200": _json(_ref("Attached"), "attached"),
                **_errors(400, 404, 409, 422, 503),
            },
        }
    },
    "/admin/api/mail": {
        "get": {
            "operationId": "admin_list_mail",
            "summary": "List outbox messages, newest first (never their bodies)",
            "parameters": [
                _param("state", "query", {"type": "string", "enum": [s.value for s in State]}, ""),
                _param("kind", "query", {"type": "string", "enum": [k.value for k in Kind]}, ""),
                _param("link", "query", {"type": "string"}, "a link id: its messages only"),
                _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 200}, ""),
                _param("cursor", "query", {"type": "string"}, "a page's next_cursor"),
            ],
            "responses": {"200": _json(_ref("MailPage"), "a page of messages"), **_errors(422)},
        }
    },
    "/admin/api/mail/{id}": {
        "get": {
            "operationId": "admin_show_mail",
            "summary": "One outbox message with its payload",
            "parameters": [_MESSAGE_ID],
            "responses": {
                "200": _json(_ref("OutboxMessageDetail"), "the message"),
                **_errors(404),
            },
        }
    },
    "/admin/api/mail/{id}/retry": {
        "post": {
            "operationId": "admin_retry_mail",
            "summary": "Send a failed, canceled or skipped message again, now",
            "description": (
                "A fresh set of attempts, and one of them at once: the answer is the message"
                " after it (sent, or pending with last_error while the sender retries, or"
                " failed). Written to the link's audit trail when the message is about a link."
                " 409 wrong_state for a pending, sending or sent message."
            ),
            "parameters": [_MESSAGE_ID],
            "responses": {
                "200": _json(_ref("OutboxMessage"), "the message after this try"),
                **_errors(404, 409),
            },
        }
    },
    "/admin/api/mail/{id}/cancel": {
        "post": {
            "operationId": "admin_cancel_mail",
            "summary": "Never send a pending or failed message",
            "description": (
                "Written to the link's audit trail when the message is about a link; retry"
                " sends it after all. 409 wrong_state for any other state."
            ),
            "parameters": [_MESSAGE_ID],
            "responses": {
                "200": _json(_ref("OutboxMessage"), "canceled"),
                **_errors(404, 409),
            },
        }
    },
    "/admin/api/reconcile": {
        "post": {
            "operationId": "admin_reconcile",
            "summary": "Run the reconciler now and return its report",
            "responses": {
                "200": _json(_ref("ReconcileReport"), "report (ran=false: another run holds it)"),
                **_errors(501, 503),
            },
        }
    },
}


def openapi_document(server_url: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Checkout-link gateway admin API",
            "version": "1",
            "description": "Every endpoint but this document needs Authorization: Bearer <key>.",
        },
        "servers": [{"url": server_url.rstrip("/")}],
        "security": [{"bearer": []}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Error": _json(_ref("Error"), "an error with a stable code")},
            "schemas": SCHEMAS,
        },
    }
