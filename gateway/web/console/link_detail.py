"""One payment link in the console (issue 15 item 8): ``/admin/links/{link_id}``.

What it shows (``services.link_timeline.LinkTimeline``): the items and total, the status, the
payer's page (a button that opens it in a new tab), the address to copy, and one timeline of
everything that happened to the link, with who did it. Payer and account emails go through the
``email`` filter: masked for viewers.

What a treasurer (``Permission.ISSUE``) can do, each a POST that the services audit:

- ``/send``: email the link again (``AdminLinks.resend``);
- ``/revoke``: revoke it, with a reason and a confirmation (``LinkService.revoke``);
- ``/correct``: a form prefilled with the link's payer and items; confirmed, it revokes the link
  and issues the corrected one in its place (``services.link_corrections.correct_link``).

What a treasurer (``Permission.REFUND``) can do with money (issue 16, the services of
``services.money_operations`` through ``services.support.SupportDesk``):

- ``/refund``: refund a payment made through Stripe, all or part; the form shows the amount still
  refundable and sends it back as the guard (``expected_refundable``), so two people refund once;
- ``/mark-paid``: record a payment made outside Stripe (amount, method, note), which blocks
  further payment.

A viewer sees no action and every POST answers 403 (``require``).
Handlers only read the form and call services; every refusal re-renders the page with the
problem named (4xx) and changes nothing.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

from gateway.domain.accounts import Permission, mask_email
from gateway.domain.errors import NotFound, PaymentProviderUnavailable, ValidationFailed
from gateway.domain.links import validate_new_link
from gateway.domain.money import format_minor
from gateway.domain.text import Text
from gateway.i18n.catalogs import N_
from gateway.services.admin_links import LinkNotSendable
from gateway.services.email import EmailNotConfigured
from gateway.services.link_corrections import LinkNotCorrectable, correct_link
from gateway.services.link_timeline import Timeline
from gateway.services.manual_payments import METHODS
from gateway.services.refunds import MoneyRefused, StripeFailed
from gateway.services.support import METHOD_NAMES
from gateway.web.console.base import (
    FormErrors,
    field,
    form_data,
    locale_of,
    principal,
    redirect_to,
    render,
    require,
    t,
)
from gateway.web.keys import ADMIN, LINKS, LISTING, PAYMENTS, SETTINGS, SUPPORT, TIMELINE

routes = web.RouteTableDef()

# A link id as the gateway writes them (services.ids); anything else is no link (404).
LINK_ID: Final = "{link_id:[A-Za-z0-9_-]{1,64}}"
REASON_CHARS: Final = 200
ITEMS_CHARS: Final = 20_000  # the corrected form's item lines (at most MAX_ITEMS of them)

ENTER_REASON = N_("Say why the link is revoked (the payer does not see this)")
CONFIRM_REVOKE = N_("Tick the box to confirm that the payer can no longer pay with this link")
CONFIRM_CORRECT = N_("Tick the box to confirm that the old link is revoked and replaced")
NOT_SENDABLE = N_("Only a link that can still be paid is emailed.")
NO_EMAIL = N_("Email is not set up on this gateway, so the link cannot be emailed.")
SEND_FAILED = N_("The email could not be sent: %(error)s")
NOT_CORRECTABLE = N_("This link is paid or a payment is in progress: it cannot be replaced.")
MONEY_REASON_CHARS: Final = 500
# What was done with money, shown once after the redirect (``?done=<key>``): a fixed set.
MONEY_DONE: Final[Mapping[str, str]] = {
    "refunded": N_("The refund is made; the payer is told by email."),
    "marked_paid": N_("The payment is recorded; the link can no longer be paid."),
}

_EMAIL_IN_TEXT: Final = re.compile(r"[^\s<>()\"',;:]{1,64}@[^\s<>()\"',;:]{1,255}")

# The corrected form's fields as validate_new_link names its problems.
_FIELD_OF: Final[Mapping[str, str]] = {"total": "items", "valid_for": "valid_days"}


# --- reading ------------------------------------------------------------------------------------


async def _timeline(request: web.Request) -> Timeline:
    return await request.config_dict[TIMELINE].for_link(request.match_info["link_id"])


def _entries(request: web.Request, timeline: Timeline) -> list[dict[str, Any]]:
    """The timeline's entries with their sentences in the page's language."""
    see_emails = principal(request).can(Permission.SEE_EMAILS)

    def shown_to(value: str | None) -> str | None:
        """For a viewer, any address in free text (a revoke reason a treasurer typed, a
        delivery error) masked like the payer's own."""
        if not value or see_emails:
            return value
        return _EMAIL_IN_TEXT.sub(lambda m: mask_email(m[0]), value)

    shown = []
    for entry in timeline.entries:
        detail = shown_to(entry.detail)
        who = entry.who
        shown.append(
            {
                "at": entry.at,
                "until": entry.until,
                "kind": entry.kind.value,
                "text": shown_to(t(request, entry.text)),
                "who": t(request, who) if who is not None else None,
                "account": entry.account,
                "actor": entry.actor,
                "order_id": entry.order_id,
                "session_id": entry.session_id,
                "link_id": entry.link_id,
                "detail": detail,
            }
        )
    return shown


async def _page(
    request: web.Request,
    *,
    status: int = 200,
    errors: FormErrors | None = None,
    form: Mapping[str, str] | None = None,
    problem: str | None = None,
    target: str = "",
) -> web.Response:
    timeline = await _timeline(request)
    more = timeline.more
    done = request.query.get("done", "")
    context = {
        "timeline": timeline,
        "link": timeline.link,
        "entries": _entries(request, timeline),
        "more": t(request, more) if more is not None else None,
        "errors": errors or FormErrors(),
        "form": form or {},
        "problem": problem,
        "can_send": request.config_dict[SETTINGS].email.enabled
        and timeline.status not in ("paid", "processing", "revoked", "expired"),
        "can_revoke": timeline.link.revoked_at is None and timeline.state not in ("paid",),
        "can_correct": timeline.state not in ("paid", "processing"),
        "refundable": await request.config_dict[SUPPORT].refundable_orders(timeline.link.id),
        "can_mark_paid": timeline.state == "payable",
        "amount_plain": format_minor(timeline.link.amount_total, timeline.link.currency).rsplit(
            " ", 1
        )[0],
        "methods": [(m, t(request, METHOD_NAMES[m])) for m in METHODS],
        "target": target,
        "done": t(request, MONEY_DONE[done]) if done in MONEY_DONE and status < 400 else None,
    }
    return render(request, "console/link_detail.html", context, status=status)


@routes.get("/links/" + LINK_ID, name="console.link")
async def show(request: web.Request) -> web.Response:
    require(request, Permission.VIEW)
    return await _page(request)


# --- actions ------------------------------------------------------------------------------------


@routes.post("/links/" + LINK_ID + "/send", name="console.link_send")
async def send(request: web.Request) -> web.Response:
    p = require(request, Permission.ISSUE)
    link_id = request.match_info["link_id"]
    await _timeline(request)  # 404 for no such link, before anything is done
    try:
        result = await request.config_dict[ADMIN].resend(link_id, actor=p.actor)
    except LinkNotSendable:
        return await _page(request, status=409, problem=t(request, NOT_SENDABLE))
    except EmailNotConfigured:
        return await _page(request, status=409, problem=t(request, NO_EMAIL))
    if not result.ok:
        problem = t(request, Text(SEND_FAILED, error=result.error or ""))
        return await _page(request, status=502, problem=problem)
    raise redirect_to(request, "console.link", notice="sent", link_id=link_id)


@routes.post("/links/" + LINK_ID + "/revoke", name="console.link_revoke")
async def revoke(request: web.Request) -> web.Response:
    p = require(request, Permission.ISSUE)
    link_id = request.match_info["link_id"]
    data = await form_data(request)
    reason = field(data, "reason", max_chars=REASON_CHARS + 1)
    errors = FormErrors()
    if not reason or len(reason) > REASON_CHARS:
        errors.add("reason", t(request, ENTER_REASON))
    if field(data, "confirm") != "yes":
        errors.add("confirm", t(request, CONFIRM_REVOKE))
    if errors:
        return await _page(request, status=422, errors=errors, form={"reason": reason})
    await _timeline(request)  # 404 for no such link
    await request.config_dict[LINKS].revoke(
        link_id, actor=p.actor, reason=reason, provider=request.config_dict[PAYMENTS]
    )
    raise redirect_to(request, "console.link", notice="revoked", link_id=link_id)


# --- the corrected link -------------------------------------------------------------------------


def _prefilled(timeline: Timeline) -> dict[str, str]:
    link = timeline.link
    lines = []
    for item in timeline.items:
        amount = format_minor(item["amount"], link.currency).rsplit(" ", 1)[0]
        quantity = f"x{item['quantity']}" if item["quantity"] != 1 else ""
        lines.append(f"{item['description']}={amount}{quantity}")
    days = max(1, round((link.valid_until - link.created_at).total_seconds() / 86400))
    return {
        "name": link.name,
        "email": link.email,
        "description": link.description,
        "ref": link.ref,
        "items": "\n".join(lines),
        "valid_days": str(days),
        "reason": "",
    }


async def _correct_page(
    request: web.Request,
    timeline: Timeline,
    form: Mapping[str, str],
    *,
    errors: FormErrors | None = None,
    status: int = 200,
    problem: str | None = None,
) -> web.Response:
    context = {
        "timeline": timeline,
        "link": timeline.link,
        "form": form,
        "errors": errors or FormErrors(),
        "problem": problem,
        "email_enabled": request.config_dict[SETTINGS].email.enabled,
    }
    return render(request, "console/link_correct.html", context, status=status)


@routes.get("/links/" + LINK_ID + "/correct", name="console.link_correct")
async def correct_form(request: web.Request) -> web.Response:
    require(request, Permission.ISSUE)
    timeline = await _timeline(request)
    if timeline.state in ("paid", "processing"):
        return await _page(request, status=409, problem=t(request, NOT_CORRECTABLE))
    return await _correct_page(request, timeline, _prefilled(timeline))


@routes.post("/links/" + LINK_ID + "/correct", name="console.link_correct_submit")
async def correct(request: web.Request) -> web.Response:
    p = require(request, Permission.ISSUE)
    link_id = request.match_info["link_id"]
    timeline = await _timeline(request)
    data = await form_data(request)
    form = {
        "name": field(data, "name", max_chars=400),
        "email": field(data, "email", max_chars=400),
        "description": field(data, "description", max_chars=1000),
        "ref": field(data, "ref", max_chars=400),
        "items": field(data, "items", max_chars=ITEMS_CHARS),
        "valid_days": field(data, "valid_days", max_chars=10),
        "reason": field(data, "reason", max_chars=REASON_CHARS + 1),
        "send": "yes" if field(data, "send") == "yes" else "",
    }
    errors = FormErrors()
    locale = locale_of(request)
    settings = request.config_dict[SETTINGS]
    link = timeline.link
    days: float = 0
    try:
        days = float(form["valid_days"])
    except ValueError:
        days = 0
    if not 0 < days < 100_000:  # NaN too; the service's own limit is checked below
        errors.add("valid_days", t(request, N_("Enter a number of days, like 30")))
    lines = [line for line in form["items"].splitlines() if line.strip()]
    new = None
    try:
        new = validate_new_link(
            email=form["email"],
            name=form["name"],
            description=form["description"],
            currency=link.currency,
            items=lines,
            ref=form["ref"],
            valid_for=days * 86400 if days > 0 else 86400,
            max_valid_for=settings.tokens.max_age,
            locale=link.locale,
            due=link.due_date.isoformat() if link.due_date else None,
            reminders=link.reminder_steps,
            now=request.config_dict[LINKS].now(),
            timezone=settings.checkout.timezone,
        )
    except ValidationFailed as exc:
        for name, message in FormErrors.from_validation(exc, locale).items():
            key = "items" if name.startswith("items") else _FIELD_OF.get(name, name)
            errors.add(key, message)
    if len(form["reason"]) > REASON_CHARS:
        errors.add("reason", t(request, N_("At most 200 characters")))
    if field(data, "confirm") != "yes":
        errors.add("confirm", t(request, CONFIRM_CORRECT))
    if errors or new is None:
        return await _correct_page(request, timeline, form, errors=errors, status=422)
    try:
        done = await correct_link(
            link_id,
            new,
            links=request.config_dict[LINKS],
            listing=request.config_dict[LISTING],
            provider=request.config_dict[PAYMENTS],
            actor=p.actor,
            reason=form["reason"],
        )
    except LinkNotCorrectable:
        return await _page(request, status=409, problem=t(request, NOT_CORRECTABLE))
    new_id = done.new.id
    if form["send"] and settings.email.enabled:
        # Not emailed: the new link's history says so, and "Send again" is there.
        with contextlib.suppress(LinkNotSendable, EmailNotConfigured, NotFound):
            await request.config_dict[ADMIN].resend(new_id, actor=p.actor)
    raise redirect_to(request, "console.link", notice="replaced", link_id=new_id)


# --- money (issue 16) ---------------------------------------------------------------------------

# Which form was sent (its fields' ids start with it), and the service's field names as the
# forms name them.
_MONEY_TARGET: Final = re.compile(r"refund-[0-9]{1,3}|mark-paid")
_MONEY_FIELDS: Final[Mapping[str, str]] = {
    "amount": "amount",
    "method": "method",
    "reason": "reason",
    "note": "reason",
}


async def _money(request: web.Request, work: Any) -> web.Response:
    """Run ``work(principal, form)`` (a money operation) and answer: 303 back to the page with
    what was done, or the page with the problem named and nothing changed."""
    p = require(request, Permission.REFUND)
    link_id = request.match_info["link_id"]
    await _timeline(request)  # 404 for no such link, before anything is done
    data = await form_data(request)
    target = field(data, "target", max_chars=40)
    if not _MONEY_TARGET.fullmatch(target):
        target = "mark-paid" if request.path.endswith("/mark-paid") else "refund-1"
    form = {
        "reason": field(data, "reason", max_chars=MONEY_REASON_CHARS + 1),
        "amount": field(data, "amount", max_chars=40),
    }
    try:
        done = await work(p, data, form)
    except ValidationFailed as exc:
        # Named after the form's own fields, so the error summary's links reach them.
        errors = FormErrors()
        for name, message in FormErrors.from_validation(exc, locale_of(request)).items():
            errors.add(f"{target}-{_MONEY_FIELDS.get(name, 'reason')}", message)
        return await _page(request, status=422, errors=errors, form=form, target=target)
    except MoneyRefused as exc:
        return await _page(request, status=409, problem=t(request, exc.message), target=target)
    except StripeFailed as exc:
        return await _page(
            request, status=exc.status, problem=t(request, exc.message), target=target
        )
    except PaymentProviderUnavailable as exc:
        problem = t(
            request,
            Text(
                "Stripe could not be asked now (reference %(reference)s): nothing was done. "
                "Try again in a minute.",
                reference=exc.reference,
            ),
        )
        return await _page(request, status=503, problem=problem, target=target)
    except NotFound:
        problem = t(request, N_("There is no such payment on this link: nothing was done."))
        return await _page(request, status=404, problem=problem, target=target)
    raise web.HTTPSeeOther(
        str(request.app.router["console.link"].url_for(link_id=link_id)) + f"?done={done}"
    )


@routes.post("/links/" + LINK_ID + "/refund", name="console.link_refund")
async def refund(request: web.Request) -> web.Response:
    async def work(p: Any, data: Mapping[str, Any], form: Mapping[str, str]) -> str:
        order_id = field(data, "order_id", max_chars=64)
        # Only a payment of this link (the service names why one cannot be refunded).
        if order_id not in await _order_ids(request):
            raise NotFound(order_id)
        raw = field(data, "expected_refundable", max_chars=20)
        if not raw.isdigit():
            raise ValidationFailed({"amount": Text("the form is out of date: reload the page")})
        await request.config_dict[SUPPORT].refund(
            order_id,
            amount=form["amount"] or None,
            reason=form["reason"],
            expected_refundable=int(raw),
            actor=p.actor,
        )
        return "refunded"

    return await _money(request, work)


async def _order_ids(request: web.Request) -> list[str]:
    diagnosis = await request.config_dict[SUPPORT].diagnose(request.match_info["link_id"])
    return list(diagnosis.facts["order_ids"])


@routes.post("/links/" + LINK_ID + "/mark-paid", name="console.link_mark_paid")
async def mark_paid(request: web.Request) -> web.Response:
    async def work(p: Any, data: Mapping[str, Any], form: Mapping[str, str]) -> str:
        await request.config_dict[SUPPORT].mark_paid(
            request.match_info["link_id"],
            amount=form["amount"],
            method=field(data, "method", max_chars=20),
            note=form["reason"],
            actor=p.actor,
        )
        return "marked_paid"

    return await _money(request, work)
