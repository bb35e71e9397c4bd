"""The console's Bulk upload page (issue 15, item 9): a CSV in, a preview, then the links.

The file is read exactly as the JSON API reads it (:func:`gateway.services.bulk_files.parse_csv`:
comma, semicolon or tab; UTF-8 with or without BOM, else Windows-1252 with a warning; row numbers
as the spreadsheet's) and checked by :meth:`AdminLinks.bulk` with ``dry_run``. The preview shows
every row: payer, items, parsed total, and every problem, or that its ref is already issued.

**How the confirm creates exactly what was previewed.** The preview's confirm form carries the
uploaded file's bytes (base64, in a hidden field), their SHA-256, and a digest of the refs the
preview said would be created. On confirm the bytes are checked against their SHA-256, read and
dry-run again; if the refs that would be created are not the previewed ones (a link was issued
meanwhile, a default changed) the preview comes back, with a warning, instead of any link. Only
then the same rows are issued (idempotent by ref: a re-upload of the same file, or a second
press, creates nothing new and shows those rows as already issued). Rows with problems are
skipped only when the preview listed them and the person pressed the button that says so.

**Bounds.** A file of at most :func:`upload_cap` bytes (512 KB, less when ``server.max_body_bytes``
is smaller, so that the confirm form's base64 copy still fits under it): larger files get a 413
page saying so (the API and ``gateway links bulk`` take files up to 32 MB). Anything larger than
``server.max_body_bytes`` is refused by the console before this page runs (413).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from aiohttp import web
from markupsafe import Markup

from gateway.config import Settings
from gateway.domain.accounts import Permission
from gateway.domain.text import Text, message_of
from gateway.i18n.catalogs import N_, localize
from gateway.services.bulk_files import (
    MAX_FIELD_BYTES,
    BulkFile,
    BulkFormatError,
    FileRow,
    parse_csv,
)
from gateway.services.bulk_issue import BulkInterrupted, BulkInvalid, BulkReport
from gateway.services.email import EmailNotConfigured
from gateway.web.console.base import (
    ENVIRONMENTS,
    FormErrors,
    form_data,
    locale_of,
    maybe_principal,
    render,
    require,
    t,
)
from gateway.web.console.base import field as text_field
from gateway.web.console.new_link import link_path
from gateway.web.keys import ADMIN, MAILER, METRICS, SETTINGS

routes = web.RouteTableDef()

MAX_UPLOAD_BYTES = 512 * 1024
_ROWS_INLINE = 200  # more rows than this are rendered in a worker thread
_FORM_ROOM = 16 * 1024  # the confirm form's other fields
# How a workbook starts (.xlsx/.ods are zip archives, .xls an OLE file): named, not misread.
_ZIP = b"PK\x03\x04"
_OLE = b"\xd0\xcf\x11\xe0"


def upload_cap(settings: Settings) -> int:
    """The largest file the page takes: its base64 copy must fit in one request body."""
    return max(0, min(MAX_UPLOAD_BYTES, (settings.server.max_body_bytes - _FORM_ROOM) * 3 // 4))


class UploadRefused(Exception):
    """The upload cannot be read at all (no file, too large, not the previewed bytes)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _kept(rows: Iterable[FileRow], kept: dict[int, dict[str, Any]]) -> Iterator[FileRow]:
    """The rows as the service reads them, each remembered for the preview table (a row with
    problems has no parsed link to show, only what the file said)."""
    for row in rows:
        kept[row.number] = row.fields
        yield row


def _would_create(report: BulkReport) -> str:
    refs = sorted(r.ref for r in report.rows if r.status == "would_create")
    return hashlib.sha256("\n".join(refs).encode()).hexdigest()[:32]


def _file_bytes(request: web.Request, data: Mapping[str, Any]) -> bytes:
    """The uploaded file (first step) or the previewed copy (confirm step)."""
    cap = upload_cap(request.config_dict[SETTINGS])
    too_large = t(
        request,
        Text(
            "The file is larger than %(size)s KB. Split it, or send it with the API or "
            "'gateway links bulk', which take larger files.",
            size=cap // 1024,
        ),
    )
    content = data.get("content")
    if isinstance(content, str) and content:
        if len(content) > (cap * 4 // 3) + 8:
            raise UploadRefused(413, too_large)
        try:
            body = base64.b64decode(content.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            body = b""
        digest = text_field(data, "sha256", max_chars=64)
        if not body or hashlib.sha256(body).hexdigest() != digest:
            raise UploadRefused(
                400, t(request, N_("The previewed file did not come back intact. Upload it again."))
            )
        return body
    upload = data.get("file")
    reader = getattr(upload, "file", None)
    if reader is None:
        raise UploadRefused(400, t(request, N_("Choose a CSV file to upload")))
    body = reader.read(cap + 1)
    if len(body) > cap:
        raise UploadRefused(413, too_large)
    if not body:
        raise UploadRefused(400, t(request, N_("The file is empty")))
    if body.startswith((_ZIP, _OLE)):
        raise UploadRefused(
            400,
            t(
                request,
                N_(
                    "This is a spreadsheet workbook, not a CSV. In your spreadsheet choose "
                    "Save as (or Download) > 'CSV UTF-8', and upload that file."
                ),
            ),
        )
    return bytes(body)


# A row's problems are named by the file's column (as its header writes it), items by number.
def _problem_name(request: web.Request, name: str) -> str:
    """``items[1]`` -> "item 2"; a column's name as the file writes it."""
    if name.startswith("items[") and name.endswith("]") and name[6:-1].isdigit():
        return t(request, Text("item %(number)s", number=int(name[6:-1]) + 1))
    return name


def _rows_view(
    report: BulkReport, kept: Mapping[int, Mapping[str, Any]], request: web.Request
) -> list[dict[str, Any]]:
    """One entry per row of the report, for the table."""
    locale = locale_of(request)
    view = []
    for row in report.rows:
        raw = kept.get(row.row, {})
        entry: dict[str, Any] = {
            "row": row.row,
            "ref": row.ref,
            "status": row.status,
            "new": row.new,
            "name": row.new.name if row.new else str(raw.get("name") or ""),
            "email": row.new.email if row.new else str(raw.get("email") or ""),
            "raw_items": str(raw.get("items") or raw.get("amount") or ""),
            "errors": [
                (_problem_name(request, name), localize(locale, message))
                for name, message in row.errors.items()
            ],
            "id": row.id,
            "path": link_path(request, row.id) if row.id else "",
            "differs": row.differs,
            "email_result": row.email,
            "email_error": localize(locale, row.email.error)
            if row.email is not None and row.email.error
            else "",
        }
        view.append(entry)
    return view


async def _page(
    request: web.Request,
    *,
    errors: FormErrors | None = None,
    status: int = 200,
    **context: Any,
) -> web.Response:
    settings = request.config_dict[SETTINGS]
    page: dict[str, Any] = {
        "errors": errors or FormErrors(),
        "mail_enabled": request.config_dict[MAILER].enabled,
        "cap_kb": upload_cap(settings) // 1024,
        "field_kb": MAX_FIELD_BYTES // 1024,
        "report": None,
        "rows": [],
        "done": False,
        "changed": False,
        "send": request.config_dict[MAILER].enabled,
        "filename": "",
        "failure": "",
    }
    page.update(context)
    page["rows_html"] = await _rows_html(request, page["rows"])
    return render(request, "console/bulk.html", page, status=status)


async def _rows_html(request: web.Request, rows: list[dict[str, Any]]) -> Markup:
    """The table's rows: a file of thousands of rows is rendered in a worker thread (a second
    or more of template work), so payers' requests are not held up meanwhile."""
    environment = request.config_dict[ENVIRONMENTS][locale_of(request)]
    template = environment.get_template("console/bulk_rows.html")
    context = {"rows": rows, "principal": maybe_principal(request)}
    if len(rows) <= _ROWS_INLINE:
        return Markup(template.render(context))  # noqa: S704 - autoescaped template output
    return Markup(await asyncio.to_thread(template.render, context))  # noqa: S704 - likewise


async def _dry_run(
    request: web.Request, body: bytes, actor: str
) -> tuple[BulkReport, dict[int, dict[str, Any]]]:
    parsed = parse_csv(body)
    kept: dict[int, dict[str, Any]] = {}
    rows = BulkFile(_kept(parsed.rows, kept), parsed.warnings)
    report = await request.config_dict[ADMIN].bulk(rows, actor=actor, dry_run=True)
    return report, kept


@routes.get("/bulk", name="console.bulk")
async def bulk_page(request: web.Request) -> web.Response:
    require(request, Permission.ISSUE)
    return await _page(request)


@routes.post("/bulk", name="console.bulk_submit")
async def bulk_submit(request: web.Request) -> web.Response:
    p = require(request, Permission.ISSUE)
    data = await form_data(request)
    confirm = text_field(data, "confirm", max_chars=3) == "1"
    send = text_field(data, "send", max_chars=3) == "1"
    upload = data.get("file")
    filename = (
        text_field(data, "filename", max_chars=200)
        or str(getattr(upload, "filename", "") or "")[:200]
    )
    errors = FormErrors()
    try:
        body = _file_bytes(request, data)
        report, kept = await _dry_run(request, body, p.actor)
    except UploadRefused as refused:
        errors.add("file", refused.message)
        return await _page(request, errors=errors, status=refused.status, send=send)
    except BulkFormatError as exc:
        errors.add("file", localize(locale_of(request), message_of(exc)))
        return await _page(request, errors=errors, status=400, send=send)
    content = base64.b64encode(body).decode("ascii")
    preview: dict[str, Any] = {
        "report": report,
        "rows": _rows_view(report, kept, request),
        "content": content,
        "sha256": hashlib.sha256(body).hexdigest(),
        "expected": _would_create(report),
        "filename": filename,
        "send": send,
        "warnings": [localize(locale_of(request), w) for w in report.warnings],
    }
    if not confirm:
        return await _page(request, **preview)
    if text_field(data, "expected", max_chars=64) != preview["expected"]:
        return await _page(request, changed=True, status=409, **preview)
    if send and not request.config_dict[MAILER].enabled:
        errors.add("send", t(request, N_("Email is not set up on this gateway")))
        return await _page(request, errors=errors, status=422, **preview)
    skip_invalid = text_field(data, "skip_invalid", max_chars=3) == "1"
    try:
        parsed = parse_csv(body)
        done = await request.config_dict[ADMIN].bulk(
            parsed, actor=p.actor, skip_invalid=skip_invalid, send=send
        )
    except BulkInvalid:
        return await _page(request, changed=True, status=409, **preview)
    except EmailNotConfigured:
        errors.add("send", t(request, N_("Email is not set up on this gateway")))
        return await _page(request, errors=errors, status=422, **preview)
    except BulkInterrupted as exc:
        failure = localize(locale_of(request), message_of(exc))
        return await _page(request, failure=failure, status=503, **preview)
    metrics = request.config_dict[METRICS]
    if done.count("created"):
        metrics.record_links_issued("bulk", done.count("created"))
    for row in done.rows:
        if row.email is not None:
            metrics.record_email("link", row.email.ok)
    return await _page(
        request,
        report=done,
        rows=_rows_view(done, kept, request),
        done=True,
        filename=filename,
        send=send,
        warnings=preview["warnings"],
    )
