"""The console's list of payment links (issue 15 item 7): ``/admin/links``.

- ``GET /links``: one search box (``services.link_search``: name or email, reference or its
  prefix, link id, a pasted payment URL or token, Stripe ``cs_``/``pi_``/``ch_`` ids; the page
  says how the query was read), a status filter, a date range, an order, and pages (by cursor
  newest first, by offset in the other orders: ``services.link_listing``). Bad input is the page
  again with the problem named, status 400.
- ``POST /links/actions``: send again or revoke the ticked links (checkboxes, no JavaScript).
  Without ``confirm`` it only shows what would happen ("37 selected, 3 skipped (paid)") and asks;
  with it, it acts (``services.link_bulk_actions``: the same services as the API, each change
  audited with the account) and goes back to the list. Needs ``Permission.ISSUE``: a viewer sees
  no checkbox nor button, and the POST answers 403.
- ``GET /links/export.csv``: the current filter as CSV, streamed in batches (``services.
  link_export``: capped, formula cells quoted, audited). Needs ``Permission.EXPORT``; a request
  the browser marks as cross-site is refused (an export is audited in the account's name).

Handlers read the query or the form and call services; nothing here decides which link may be
sent or revoked.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from gateway.domain.accounts import Permission
from gateway.domain.errors import ValidationFailed
from gateway.i18n.catalogs import N_
from gateway.services.email import EmailNotConfigured
from gateway.services.link_bulk_actions import MAX_SELECTION, BulkPlan, LinkBulkActions
from gateway.services.link_export import LinkExport
from gateway.services.link_listing import (
    FILTERS,
    SORTS,
    LinkFilter,
    LinkPage,
    date_bound,
)
from gateway.services.link_search import MAX_QUERY, LinkSearch, Understood
from gateway.web.console.base import (
    NOTICES,
    FormErrors,
    field,
    form_data,
    locale_of,
    principal,
    redirect_to,
    render,
    require,
    t,
    url_for,
)
from gateway.web.keys import (
    CLOCK,
    LINK_BULK,
    LINK_EXPORT,
    LINK_SEARCH,
    LISTING,
)

routes = web.RouteTableDef()

PAGE_SIZE: Final = 50
# The query parameters the list reads (and the bulk form carries back to it).
LIST_PARAMS: Final = ("q", "status", "from", "to", "sort", "cursor", "offset")
MAX_OFFSET_CHARS: Final = 12
MAX_CURSOR_CHARS: Final = 200

BAD_DATE = N_("Enter a date like 2026-04-30")
BAD_RANGE = N_("The end date must be after the start date")
BAD_STATUS = N_("Choose a status from the list")
BAD_SORT = N_("Choose an order from the list")
BAD_PAGE = N_("This page of the list does not exist: start again from the first page")
NO_EMAIL = N_("Email is not set up on this gateway, so links cannot be emailed.")


# --- reading the list's query ----------------------------------------------------------------


def _search(request: web.Request) -> LinkSearch:
    return request.config_dict[LINK_SEARCH]


def _bulk(request: web.Request) -> LinkBulkActions:
    return request.config_dict[LINK_BULK]


def _export(request: web.Request) -> LinkExport:
    return request.config_dict[LINK_EXPORT]


class _Query:
    """The list's query as given (to show back in the form) and as understood."""

    def __init__(self, params: Mapping[str, str]) -> None:
        self.raw = {k: params.get(k, "")[:400].strip() for k in LIST_PARAMS}
        self.filter: LinkFilter | None = None
        self.understood: Understood | None = None

    def keep(self, *, paging: bool = False) -> dict[str, str]:
        """The non-empty parameters (without the page's position unless ``paging``)."""
        names = LIST_PARAMS if paging else LIST_PARAMS[:5]
        return {k: self.raw[k] for k in names if self.raw[k]}


async def _read_query(request: web.Request, params: Mapping[str, str]) -> tuple[_Query, FormErrors]:
    """The filter the query asks for, or the problems with it (field by field)."""
    query = _Query(params)
    raw = query.raw
    errors = FormErrors()
    status = raw["status"] or None
    if status is not None and status not in FILTERS:
        errors.add("status", t(request, BAD_STATUS))
    sort = raw["sort"] or SORTS[0]
    if sort not in SORTS:
        errors.add("sort", t(request, BAD_SORT))
    bounds: dict[str, datetime | None] = {"from": None, "to": None}
    for name in ("from", "to"):
        if raw[name]:
            try:
                bounds[name] = date_bound(raw[name][:10], end=name == "to")
            except ValueError:
                errors.add(name, t(request, BAD_DATE))
            if len(raw[name]) != 10:
                errors.add(name, t(request, BAD_DATE))
    if bounds["from"] and bounds["to"] and bounds["to"] <= bounds["from"]:
        errors.add("to", t(request, BAD_RANGE))
    offset = 0
    if raw["offset"]:
        if not raw["offset"].isdigit() or len(raw["offset"]) > MAX_OFFSET_CHARS:
            errors.add("offset", t(request, BAD_PAGE))
        else:
            offset = int(raw["offset"])
    if len(raw["cursor"]) > MAX_CURSOR_CHARS:
        errors.add("cursor", t(request, BAD_PAGE))
    q = params.get("q", "")
    try:
        see_emails = principal(request).can(Permission.SEE_EMAILS)
        query.understood = await _search(request).understand(q, emails=see_emails)
    except ValidationFailed as exc:
        for name, message in FormErrors.from_validation(exc, locale_of(request)).items():
            errors.add(name, message)
    if errors:
        return query, errors
    query.filter = LinkFilter(
        status=status,
        created_from=bounds["from"],
        created_to=bounds["to"],
        limit=PAGE_SIZE,
        offset=offset,
        cursor=(raw["cursor"] or None) if sort == SORTS[0] else None,
        match=query.understood.match if query.understood else None,
        sort=sort,
    )
    return query, errors


async def _list_page(
    request: web.Request,
    params: Mapping[str, str],
    *,
    errors: FormErrors | None = None,
    status: int = 200,
) -> web.Response:
    query, problems = await _read_query(request, params)
    for name, message in (errors or FormErrors()).items():
        problems.add(name, message)
    page: LinkPage | None = None
    if query.filter is not None and not (query.understood and query.understood.match is None):
        try:
            page = await request.config_dict[LISTING].list(query.filter)
        except ValidationFailed as exc:  # a cursor or offset that is not one of ours
            for name in exc.errors:
                problems.add(name if name in LIST_PARAMS else "cursor", t(request, BAD_PAGE))
    if problems and status == 200:
        status = 400
    context = {
        "form": query.raw,
        "errors": problems,
        "understood": query.understood,
        "label": t(request, query.understood.label) if query.understood else None,
        "problem": t(request, query.understood.problem)
        if query.understood and query.understood.problem
        else None,
        "page": page,
        "filters": FILTERS,
        "sorts": SORTS,
        "next_url": _next_url(request, query, page),
        "first_url": url_for(request, "console.links", query.keep() or None)
        if query.raw["cursor"] or query.raw["offset"]
        else None,
        "export_url": url_for(request, "console.links_export", query.keep() or None),
        "back": urlencode(query.keep(paging=True)),
        "max_selection": MAX_SELECTION,
        "max_query": MAX_QUERY,
    }
    return render(request, "console/links.html", context, status=status)


def _next_url(request: web.Request, query: _Query, page: LinkPage | None) -> str | None:
    if page is None:
        return None
    params = query.keep()
    if page.next_cursor:
        params["cursor"] = page.next_cursor
    elif page.more:
        params["offset"] = str(page.offset + len(page.links))
    else:
        return None
    return url_for(request, "console.links", params)


@routes.get("/links", name="console.links")
async def list_links(request: web.Request) -> web.Response:
    require(request, Permission.VIEW)
    return await _list_page(request, request.query)


# --- bulk actions ----------------------------------------------------------------------------


def _back_params(raw: str) -> dict[str, str]:
    """The list's query the bulk form came from: only the list's own parameters."""
    pairs = parse_qsl(raw[:2000], keep_blank_values=False)
    return {k: v for k, v in pairs if k in LIST_PARAMS}


@routes.post("/links/actions", name="console.links_actions")
async def bulk_action(request: web.Request) -> web.Response:
    p = require(request, Permission.ISSUE)
    data = await form_data(request)
    action = field(data, "action", max_chars=20)
    ids = [v.strip()[:64] for v in data.getall("link", []) if isinstance(v, str)][
        : MAX_SELECTION + 1
    ]
    back = _back_params(field(data, "back", max_chars=2000))
    reason = field(data, "reason", max_chars=201)
    bulk = _bulk(request)
    locale = locale_of(request)
    try:
        if field(data, "confirm") != "yes":
            plan = await bulk.plan(action, ids)
            context = _confirm(request, plan, ids, back, reason, FormErrors())
            return render(request, "console/links_confirm.html", context)
        outcome = await bulk.run(action, ids, actor=p.actor, reason=reason)
    except ValidationFailed as exc:
        errors = FormErrors.from_validation(exc, locale)
        if "reason" in errors.fields:
            plan = await bulk.plan(action, ids)
            context = _confirm(request, plan, ids, back, reason, errors)
            return render(request, "console/links_confirm.html", context, status=422)
        return await _list_page(request, back, errors=_as_selection(errors), status=400)
    except EmailNotConfigured:
        errors = FormErrors()
        errors.add("selection", t(request, NO_EMAIL))
        return await _list_page(request, back, errors=errors, status=409)
    if outcome.failed:
        context = {
            "outcome": outcome,
            "plan": None,
            "back_url": url_for(request, "console.links", back or None),
        }
        return render(request, "console/links_confirm.html", context, status=502)
    notice = f"bulk_{'sent' if action == 'resend' else 'revoked'}"
    raise redirect_to(
        request, "console.links", notice=notice if notice in NOTICES else "bulk_done", query=back
    )


def _confirm(
    request: web.Request,
    plan: BulkPlan,
    ids: list[str],
    back: Mapping[str, str],
    reason: str,
    errors: FormErrors,
) -> dict[str, object]:
    """The confirmation page's context: what would happen, and the form that does it."""
    return {
        "plan": plan,
        "outcome": None,
        "ids": list(dict.fromkeys(ids)),
        "back": urlencode(back),
        "back_url": url_for(request, "console.links", back or None),
        "reason": reason,
        "errors": errors,
    }


def _as_selection(errors: FormErrors) -> FormErrors:
    """The bulk form's problems, named after the list's selection (its field id)."""
    shown = FormErrors()
    for _, message in errors.items():
        shown.add("selection", message)
    return shown


# --- export ----------------------------------------------------------------------------------


@routes.get("/links/export.csv", name="console.links_export")
async def export_csv(request: web.Request) -> web.StreamResponse:
    p = require(request, Permission.EXPORT)
    if request.headers.get("Sec-Fetch-Site") in ("cross-site", "same-site"):
        raise web.HTTPForbidden(reason="cross-site request refused")
    query, errors = await _read_query(request, request.query)
    if errors or query.filter is None:
        return await _list_page(request, request.query)
    if query.understood is not None and query.understood.match is None:
        return await _list_page(request, request.query)
    stamp = datetime.fromtimestamp(request.config_dict[CLOCK].now(), UTC).strftime("%Y%m%d-%H%M")
    response = web.StreamResponse(
        status=200,
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="payment-links-{stamp}.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
    chunks = _export(request).csv(
        query.filter, actor=p.actor, see_emails=principal(request).can(Permission.SEE_EMAILS)
    )
    try:
        first = await anext(chunks)
        await response.prepare(request)
        await response.write(first)
        async for chunk in chunks:
            await response.write(chunk)
    finally:
        await chunks.aclose()
    await response.write_eof()
    return response
