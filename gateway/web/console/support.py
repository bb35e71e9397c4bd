"""The Support page (issue 16): ``/admin/support``.

One search box: whatever the parent sent (an email, a name, a reference, a payment URL, a Stripe
id) finds the links it names (``services.support.SupportDesk.find``: the database first, then
Stripe, each result saying which). Each link is shown with its diagnosis, the facts, the reply
to send in the link's language (a read-only text area to select, and a copy button with
``static/console-support.js``) and one form per recommended fix. Every fix is a POST with a
reason, audited by the service that performs it:

- ``/support/attach`` (``Permission.REFUND``): attach an orphan payment to its link;
- ``/support/refund`` (``REFUND``): refund a payment, all or part; the form sends back the
  amount still refundable it showed (``expected_refundable``), so two people refund once;
- ``/support/mark-paid`` (``REFUND``): a payment made outside Stripe (amount, method, note);
- ``/support/resend-receipt``, ``/support/resend-link``, ``/support/replay``,
  ``/support/reconcile`` (``Permission.ISSUE``).

Re-issuing is the link page's corrected-link form (``console.link_correct``). A viewer sees no
form and every POST answers 403. After a fix the page shows the query's results again with what
was done (a fixed set of sentences); a refusal re-renders them with the problem named (4xx, or
502/503 when Stripe refused or could not be asked) and nothing changed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from aiohttp import web

from gateway.domain.accounts import Permission
from gateway.domain.errors import NotFound, PaymentProviderUnavailable, ValidationFailed
from gateway.domain.money import format_minor
from gateway.domain.support import Fix
from gateway.domain.text import Text
from gateway.i18n.catalogs import N_
from gateway.services.admin_links import LinkNotSendable
from gateway.services.email import EmailNotConfigured
from gateway.services.link_search import MAX_QUERY
from gateway.services.manual_payments import METHODS
from gateway.services.refunds import MoneyRefused, StripeFailed
from gateway.services.support import FIX_LABELS, METHOD_NAMES, Found
from gateway.web.console.base import (
    FormErrors,
    field,
    form_data,
    locale_of,
    principal,
    render,
    require,
    t,
    url_for,
)
from gateway.web.keys import SUPPORT

routes = web.RouteTableDef()

REASON_CHARS: Final = 500

# What was done, shown once after a fix (``?done=<key>``): a fixed set.
DONE: Final[Mapping[str, str]] = {
    "attached": N_("The payment is attached to its link; the payer is owed a receipt."),
    "refunded": N_("The refund is made; the payer is told by email."),
    "marked_paid": N_("The payment is recorded; the link can no longer be paid."),
    "receipt": N_("The receipt will be sent again within a minute."),
    "receipt_waiting": N_("A receipt is already waiting to be sent: nothing was added."),
    "link_sent": N_("The payment link has been emailed again."),
    "replayed": N_("Stripe's event has been applied again."),
    "reconciled": N_("The gateway has checked with Stripe."),
}

KIND_TAGS: Final[Mapping[str, str]] = {
    "not_opened": N_("Not opened"),
    "bots_only": N_("Opened only by bots"),
    "opened_not_paid": N_("Opened, not paid"),
    "at_checkout": N_("At checkout now"),
    "processing": N_("Payment processing"),
    "paid_receipt_delivered": N_("Paid, receipt delivered"),
    "paid_receipt_not_delivered": N_("Paid, receipt not delivered"),
    "paid_twice": N_("Paid twice"),
    "bank_payment_failed": N_("Bank payment failed"),
    "expired_unpaid": N_("Expired unpaid"),
    "revoked": N_("Revoked"),
    "refunded": N_("Refunded"),
    "disputed": N_("Disputed"),
    "orphan": N_("Paid at Stripe, not recorded here"),
    "paid_outside_stripe": N_("Paid outside Stripe"),
}

# Which form was sent (its fields' ids start with it: fix, result, and for several of one
# kind its number), and the services' field names as the forms name them.
_TARGET: Final = re.compile(r"[a-z_]{1,20}-[0-9]{1,3}(-[0-9]{1,3})?")
_FIELDS: Final[Mapping[str, str]] = {"amount": "amount", "method": "method", "note": "reason"}
# Which permission each fix needs.
PERMISSION_OF: Final[Mapping[Fix, Permission]] = {
    Fix.ATTACH_ORPHAN: Permission.REFUND,
    Fix.REFUND_DUPLICATE: Permission.REFUND,
    Fix.MARK_PAID: Permission.REFUND,
    Fix.RESEND_RECEIPT: Permission.ISSUE,
    Fix.RESEND_LINK: Permission.ISSUE,
    Fix.REISSUE: Permission.ISSUE,
    Fix.REPLAY_EVENT: Permission.ISSUE,
    Fix.RECONCILE: Permission.ISSUE,
}


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _results(request: web.Request, found: Found) -> list[dict[str, Any]]:
    desk = request.config_dict[SUPPORT]
    locale = locale_of(request)
    p = principal(request)
    shown = []
    for n, result in enumerate(found.results):
        d = result.diagnosis
        note = t(request, result.note) if result.note else None
        if d is None:
            shown.append({"n": n, "source": result.source, "note": note, "d": None})
            continue
        fixes = [
            {"fix": f.value, "label": t(request, FIX_LABELS[f])}
            for f in d.fixes
            if p.can(PERMISSION_OF[f])
        ]
        shown.append(
            {
                "n": n,
                "source": result.source,
                "note": note,
                "d": d,
                "facts": d.facts,
                "tag": t(request, KIND_TAGS[d.kind.value]),
                "sentence": desk.sentence(d, locale),
                "reply": desk.reply(d),
                "fixes": fixes,
                "all_fixes": [t(request, FIX_LABELS[f]) for f in d.fixes],
                "amount_plain": format_minor(d.facts["amount"], d.facts["currency"]).rsplit(" ", 1)[
                    0
                ],
                "paid_at": _when(d.facts["paid_at"]),
                "valid_until": _when(d.facts["valid_until"]),
            }
        )
    return shown


async def _page(
    request: web.Request,
    q: str,
    *,
    status: int = 200,
    problem: str | None = None,
    errors: FormErrors | None = None,
    target: str = "",
    form: Mapping[str, str] | None = None,
) -> web.Response:
    found: Found | None = None
    q_errors = FormErrors()
    if q.strip():
        try:
            found = await request.config_dict[SUPPORT].find(
                q, emails=principal(request).can(Permission.SEE_EMAILS)
            )
        except ValidationFailed as exc:
            q_errors = FormErrors.from_validation(exc, locale_of(request))
            status = max(status, 422)
    done_key = request.query.get("done", "")
    context = {
        "q": q,
        "max_query": MAX_QUERY,
        "found": found,
        "label": t(request, found.label) if found else None,
        "found_problem": t(request, found.problem) if found and found.problem else None,
        "results": _results(request, found) if found else [],
        "q_errors": q_errors,
        "done": t(request, DONE[done_key]) if done_key in DONE and status < 400 else None,
        "problem": problem,
        "errors": errors or FormErrors(),
        "target": target,
        "form": form or {},
        "methods": [(m, t(request, METHOD_NAMES[m])) for m in METHODS],
    }
    return render(request, "console/support.html", context, status=status)


@routes.get("/support", name="console.support")
async def show(request: web.Request) -> web.Response:
    require(request, Permission.VIEW)
    return await _page(request, request.query.get("q", "")[: MAX_QUERY + 1])


# --- the fixes ----------------------------------------------------------------------------------


def _done(request: web.Request, q: str, key: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(url_for(request, "console.support", {"q": q, "done": key}))


async def _act(
    request: web.Request,
    permission: Permission,
    fix: str,
    work: Any,
) -> web.Response:
    """Read the form, run ``work(principal, data, reason)`` and answer: 303 with what was done,
    or the page again with the problem (nothing changed)."""
    p = require(request, permission)
    data = await form_data(request)
    q = field(data, "q", max_chars=MAX_QUERY)
    target = field(data, "target", max_chars=100)
    if not _TARGET.fullmatch(target):
        target = "form"
    reason = field(data, "reason", max_chars=REASON_CHARS + 1)
    form = {"reason": reason, "amount": field(data, "amount", max_chars=40)}
    locale = locale_of(request)
    try:
        key = await work(p, data, reason)
    except ValidationFailed as exc:
        # Named after the sent form's own fields, so the error summary's links reach them.
        errors = FormErrors()
        for name, message in FormErrors.from_validation(exc, locale).items():
            errors.add(f"{target}-{_FIELDS.get(name, 'reason')}", message)
        return await _page(request, q, status=422, errors=errors, target=target, form=form)
    except MoneyRefused as exc:
        return await _page(request, q, status=409, problem=t(request, exc.message), target=target)
    except StripeFailed as exc:
        return await _page(
            request, q, status=exc.status, problem=t(request, exc.message), target=target
        )
    except (LinkNotSendable, EmailNotConfigured) as exc:
        return await _page(request, q, status=409, problem=t(request, str(exc)), target=target)
    except PaymentProviderUnavailable as exc:
        problem = t(
            request,
            Text(
                "Stripe could not be asked now (reference %(reference)s): nothing was done. "
                "Try again in a minute.",
                reference=exc.reference,
            ),
        )
        return await _page(request, q, status=503, problem=problem, target=target)
    except NotFound:
        problem = t(request, N_("There is no such link, payment or event: nothing was done."))
        return await _page(request, q, status=404, problem=problem, target=target)
    raise _done(request, q, key)


def _expected(data: Mapping[str, Any]) -> int:
    raw = field(data, "expected_refundable", max_chars=20)
    if not raw.isdigit():
        raise ValidationFailed({"amount": Text("the form is out of date: search again")})
    return int(raw)


@routes.post("/support/attach", name="console.support_attach")
async def attach(request: web.Request) -> web.Response:
    async def work(p: Any, data: Mapping[str, Any], reason: str) -> str:
        await request.config_dict[SUPPORT].attach(
            field(data, "orphan_id", max_chars=64), reason=reason, actor=p.actor
        )
        return "attached"

    return await _act(request, Permission.REFUND, "attach", work)


@routes.post("/support/refund", name="console.support_refund")
async def refund(request: web.Request) -> web.Response:
    async def work(p: Any, data: Mapping[str, Any], reason: str) -> str:
        amount = field(data, "amount", max_chars=40)
        await request.config_dict[SUPPORT].refund(
            field(data, "order_id", max_chars=64),
            amount=amount or None,
            reason=reason,
            expected_refundable=_expected(data),
            actor=p.actor,
        )
        return "refunded"

    return await _act(request, Permission.REFUND, "refund", work)


@routes.post("/support/mark-paid", name="console.support_mark_paid")
async def mark_paid(request: web.Request) -> web.Response:
    async def work(p: Any, data: Mapping[str, Any], reason: str) -> str:
        await request.config_dict[SUPPORT].mark_paid(
            field(data, "link_id", max_chars=64),
            amount=field(data, "amount", max_chars=40),
            method=field(data, "method", max_chars=20),
            note=reason,
            actor=p.actor,
        )
        return "marked_paid"

    return await _act(request, Permission.REFUND, "mark_paid", work)


@routes.post("/support/resend-receipt", name="console.support_resend_receipt")
async def resend_receipt(request: web.Request) -> web.Response:
    async def work(p: Any, data: Mapping[str, Any], reason: str) -> str:
        added = await request.config_dict[SUPPORT].resend_receipt(
            field(data, "link_id", max_chars=64), reason=reason, actor=p.actor
        )
        return "receipt" if added else "receipt_waiting"

    return await _act(request, Permission.ISSUE, "resend_receipt", work)


@routes.post("/support/resend-link", name="console.support_resend_link")
async def resend_link(request: web.Request) -> web.Response:
    async def work(p: Any, data: Mapping[str, Any], reason: str) -> str:
        result = await request.config_dict[SUPPORT].resend_link(
            field(data, "link_id", max_chars=64), reason=reason, actor=p.actor
        )
        if not result.ok:
            raise MoneyRefused(
                "send_failed",
                Text("The email could not be sent: %(error)s", error=result.error or ""),
            )
        return "link_sent"

    return await _act(request, Permission.ISSUE, "resend_link", work)


@routes.post("/support/replay", name="console.support_replay")
async def replay(request: web.Request) -> web.Response:
    async def work(p: Any, data: Mapping[str, Any], reason: str) -> str:
        link_id = field(data, "link_id", max_chars=64) or None
        await request.config_dict[SUPPORT].replay(
            field(data, "event_id", max_chars=255), reason=reason, actor=p.actor, link_id=link_id
        )
        return "replayed"

    return await _act(request, Permission.ISSUE, "replay", work)


@routes.post("/support/reconcile", name="console.support_reconcile")
async def reconcile(request: web.Request) -> web.Response:
    async def work(p: Any, data: Mapping[str, Any], reason: str) -> str:
        link_id = field(data, "link_id", max_chars=64) or None
        await request.config_dict[SUPPORT].reconcile(reason=reason, actor=p.actor, link_id=link_id)
        return "reconciled"

    return await _act(request, Permission.ISSUE, "reconcile", work)
