"""The console's New link page (issue 15, item 9): a form, then a check step, then the link.

Two steps, so a person confirms exactly what the server understood and money is never
reinterpreted:

1. ``POST /links/new`` without ``confirm``: the fields are read by the same rules as the JSON
   API (:func:`gateway.services.bulk_issue.validate_row`, which reads amounts with
   :mod:`gateway.domain.money`: ``150,00`` is refused, saying how to write it). Problems come
   back next to their fields; otherwise the page shows "You are asking Sam Rivera for $270.00"
   with every item, and a "Create link" form carrying the same values plus ``confirm=1`` and a
   digest of what was understood.
2. ``POST /links/new`` with ``confirm=1``: the values are read again; if what they mean is not
   what was shown (the digest differs: e.g. the default currency was changed meanwhile), the
   check page comes back instead of a link. Otherwise :meth:`AdminLinks.create` issues it (one
   live link per ref: a ref that has one gives that link back and nothing is created unless the
   person ticked "create another"), emails it when asked, and the browser goes to the link.

``POST /links/new/preview`` answers the same reading as JSON for the page's script (the live
summary): money is parsed only on the server, never in JavaScript.

Without JavaScript the form has :data:`ITEM_ROWS` item rows (blank ones are ignored); the script
adds rows up to :data:`gateway.domain.links.MAX_ITEMS`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from gateway.domain.accounts import Permission
from gateway.domain.links import MAX_ITEMS, NewLink
from gateway.domain.locales import NATIVE_NAMES, OFFERED
from gateway.domain.money import SUPPORTED
from gateway.i18n.catalogs import N_, localize
from gateway.services.admin_links import new_link_json
from gateway.services.bulk_issue import validate_row
from gateway.services.email import EmailNotConfigured
from gateway.web.console.base import (
    ENVIRONMENTS,
    PRINCIPAL,
    FormErrors,
    form_data,
    locale_of,
    render,
    require,
    t,
    url_for,
)
from gateway.web.console.base import field as text_field
from gateway.web.keys import ADMIN, CLOCK, LINKS, MAILER, METRICS, SETTINGS

routes = web.RouteTableDef()

ITEM_ROWS = 5  # item rows shown without JavaScript
MAX_DAYS_CHARS = 6


@dataclass
class LinkForm:
    """The New link form as submitted (text as typed: shown back exactly)."""

    name: str = ""
    email: str = ""
    items: list[tuple[str, str]] = field(default_factory=list)  # (label, amount) per row
    currency: str = ""
    ref: str = ""
    due: str = ""
    valid_days: str = ""
    locale: str = ""
    send: bool = False
    allow_duplicate: bool = False

    def rows(self) -> list[tuple[str, str]]:
        """Rows to show: every filled one, at least :data:`ITEM_ROWS`."""
        last = max((i + 1 for i, (lab, amt) in enumerate(self.items) if lab or amt), default=0)
        shown = list(self.items[: max(last, ITEM_ROWS)])
        return shown + [("", "")] * (max(last, ITEM_ROWS) - len(shown))

    def hidden(self) -> list[tuple[str, str]]:
        """The values as form fields again (the confirm form posts exactly these)."""
        pairs = [
            ("name", self.name),
            ("email", self.email),
            ("currency", self.currency),
            ("ref", self.ref),
            ("due", self.due),
            ("valid_days", self.valid_days),
            ("locale", self.locale),
        ]
        for number, (label, amount) in enumerate(self.items, start=1):
            if label or amount:
                pairs += [(f"item-{number}-label", label), (f"item-{number}-amount", amount)]
        if self.send:
            pairs.append(("send", "1"))
        if self.allow_duplicate:
            pairs.append(("allow_duplicate", "1"))
        return pairs


def read_form(data: Mapping[str, Any], default_currency: str) -> LinkForm:
    items = [
        (
            text_field(data, f"item-{n}-label", max_chars=500),
            text_field(data, f"item-{n}-amount", max_chars=40),
        )
        for n in range(1, MAX_ITEMS + 1)
    ]
    return LinkForm(
        name=text_field(data, "name", max_chars=200),
        email=text_field(data, "email", max_chars=320),
        items=items,
        currency=text_field(data, "currency", max_chars=3).lower() or default_currency,
        ref=text_field(data, "ref", max_chars=200),
        due=text_field(data, "due", max_chars=10),
        valid_days=text_field(data, "valid_days", max_chars=MAX_DAYS_CHARS),
        locale=text_field(data, "locale", max_chars=10),
        send=text_field(data, "send", max_chars=3) == "1",
        allow_duplicate=text_field(data, "allow_duplicate", max_chars=3) == "1",
    )


@dataclass
class Reading:
    """What the server understood from a form: a :class:`NewLink`, or problems by field id."""

    form: LinkForm
    new: NewLink | None
    errors: FormErrors
    existing: Any = None  # the live link the ref already has (a Link row), if any

    @property
    def digest(self) -> str:
        """A fingerprint of what was understood (the confirm step must mean the same)."""
        if self.new is None:
            return ""
        shown = {**new_link_json(self.new), "ref": self.new.ref, "valid_for": self.new.valid_for}
        return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()[:32]


# Domain field names -> the form's element ids (the error summary links to them).
_FIELD_IDS = {
    "email": "email",
    "name": "name",
    "description": "item-1-label",
    "currency": "currency",
    "items": "item-1-label",
    "total": "items",
    "ref": "ref",
    "valid_for": "valid_days",
    "locale": "locale",
    "due": "due",
    "reminders": "due",
    "row": "name",
}


async def read_link(request: web.Request, data: Mapping[str, Any]) -> Reading:
    """The form read by the API's rules; problems keyed by the form's element ids."""
    settings = request.config_dict[SETTINGS]
    form = read_form(data, settings.checkout.default_currency)
    locale = locale_of(request)
    errors = FormErrors()
    if not form.email:
        errors.add("email", t(request, N_("Enter the payer's email address")))
    # Filled rows, and where each came from (the domain numbers the items it was given).
    given: list[dict[str, str]] = []
    rows: list[int] = []
    for number, (label, amount) in enumerate(form.items, start=1):
        if label and not amount:
            errors.add(f"item-{number}-amount", t(request, N_("Enter an amount for this item")))
        elif amount and not label:
            errors.add(f"item-{number}-label", t(request, N_("Enter what this amount is for")))
        elif label and amount:
            given.append({"description": label, "amount": amount})
            rows.append(number)
    valid_for: int | None = None
    if form.valid_days:
        if form.valid_days.isascii() and form.valid_days.isdigit():
            valid_for = int(form.valid_days) * 86400
        else:
            errors.add("valid_days", t(request, N_("Enter a whole number of days, like 30")))
    row: dict[str, Any] = {
        "email": form.email,
        "name": form.name,
        "currency": form.currency,
        "ref": form.ref,
        "items": given,
        "locale": form.locale or None,
        "due": form.due or None,
    }
    if valid_for is not None:
        row["valid_for"] = valid_for
    now = datetime.fromtimestamp(request.config_dict[CLOCK].now(), UTC)
    new, problems = validate_row(row, settings, require_ref=False, now=now)
    half_filled = any(name.startswith("item-") for name in errors.fields)
    for name, message in problems.items():
        if name == "items" and half_filled:
            continue  # "at least one item": the half-filled row already says what is missing
        if name.startswith("items[") and name.endswith("]"):
            index = int(name[6:-1])
            target = f"item-{rows[index]}-amount" if index < len(rows) else "item-1-amount"
        else:
            target = _FIELD_IDS.get(name, name)
        errors.add(target, localize(locale, message))
    if errors:
        new = None
    existing = None
    if new is not None and new.ref:
        existing = (await request.config_dict[LINKS].live_by_ref([new.ref])).get(new.ref)
    return Reading(form, new, errors, existing)


def link_path(request: web.Request, link_id: str, notice: str | None = None) -> str:
    """The console's page of a link (the detail page's route when it is there), with a notice
    (a key of :data:`gateway.web.console.base.NOTICES`)."""
    query = {"notice": notice} if notice else None
    try:
        return url_for(request, "console.link", query, link_id=link_id)
    except KeyError:
        return f"/admin/links/{link_id}" + (f"?notice={notice}" if notice else "")


def _context(request: web.Request, reading: Reading, *, checked: bool) -> dict[str, Any]:
    settings = request.config_dict[SETTINGS]
    new = reading.new
    existing = reading.existing
    duplicate = existing is not None and not reading.form.allow_duplicate
    return {
        "form": reading.form,
        "rows": reading.form.rows(),
        "errors": reading.errors,
        "new": new,
        "checked": checked and new is not None,
        "digest": reading.digest,
        "existing": existing,
        "existing_path": link_path(request, existing.id) if existing is not None else "",
        "duplicate": duplicate,
        "currencies": sorted(SUPPORTED),
        "default_currency": settings.checkout.default_currency,
        "default_days": int(settings.checkout.default_valid_for // 86400),
        "max_days": int(settings.tokens.max_age // 86400),
        "languages": [(code, NATIVE_NAMES[code]) for code in OFFERED],
        "mail_enabled": request.config_dict[MAILER].enabled,
        "max_items": MAX_ITEMS,
        "stale": False,
    }


def _page(request: web.Request, context: dict[str, Any], *, status: int = 200) -> web.Response:
    return render(request, "console/new_link.html", context, status=status)


@routes.get("/links/new", name="console.new_link")
async def new_link_page(request: web.Request) -> web.Response:
    require(request, Permission.ISSUE)
    settings = request.config_dict[SETTINGS]
    form = LinkForm(
        currency=settings.checkout.default_currency,
        valid_days=str(int(settings.checkout.default_valid_for // 86400)),
        send=request.config_dict[MAILER].enabled,
    )
    reading = Reading(form, None, FormErrors())
    return _page(request, _context(request, reading, checked=False))


@routes.post("/links/new", name="console.new_link_submit")
async def new_link_submit(request: web.Request) -> web.Response:
    p = require(request, Permission.ISSUE)
    data = await form_data(request)
    reading = await read_link(request, data)
    confirm = text_field(data, "confirm", max_chars=3) == "1"
    if reading.form.send and not request.config_dict[MAILER].enabled:
        reading.errors.add(
            "send", t(request, N_("Email is not set up on this gateway: untick 'Email it now'"))
        )
        reading.new = None
    if reading.new is None:
        return _page(
            request,
            _context(request, reading, checked=False),
            status=422,
        )
    stale = confirm and text_field(data, "digest", max_chars=64) != reading.digest
    if not confirm or stale or (reading.existing is not None and not reading.form.allow_duplicate):
        context = _context(request, reading, checked=True)
        context["stale"] = stale
        return _page(request, context, status=409 if stale else 200)
    try:
        created = await request.config_dict[ADMIN].create(
            reading.new,
            actor=p.actor,
            send=reading.form.send,
            allow_duplicate_ref=reading.form.allow_duplicate,
        )
    except EmailNotConfigured:
        reading.errors.add("send", t(request, N_("Email is not set up on this gateway")))
        return _page(request, _context(request, reading, checked=False), status=422)
    if created.existing:
        # Another link with this ref appeared between the check and now: nothing was created.
        reading.existing = (await request.config_dict[LINKS].live_by_ref([created.ref])).get(
            created.ref
        )
        return _page(request, _context(request, reading, checked=True), status=409)
    metrics = request.config_dict[METRICS]
    metrics.record_links_issued("console")
    if created.email is not None:
        metrics.record_email("link", created.email.ok)
    if created.email is None:
        notice = "link_created"
    elif created.email.ok:
        notice = "link_created_sent"
    else:
        notice = "link_created_send_failed"
    raise web.HTTPSeeOther(link_path(request, created.id, notice))


@routes.post("/links/new/preview", name="console.new_link_preview")
async def new_link_preview(request: web.Request) -> web.Response:
    """The server's reading of the form, for the page's live summary (JSON)."""
    require(request, Permission.ISSUE)
    data = await form_data(request)
    reading = await read_link(request, data)
    environment = request.config_dict[ENVIRONMENTS][locale_of(request)]
    context = {**_context(request, reading, checked=False), "principal": request[PRINCIPAL]}
    html = environment.get_template("console/new_link_summary.html").render(context)
    body: dict[str, Any] = {"ok": reading.new is not None, "html": html}
    if reading.new is not None:
        body["total"] = new_link_json(reading.new)["total"]
    body["errors"] = dict(reading.errors.items())
    return web.json_response(body, headers={"Cache-Control": "no-store"})
