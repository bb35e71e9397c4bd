"""Reading bulk files: CSV as spreadsheets write it, or JSON rows.

Rules (each refusal is a :class:`BulkFormatError`, a 400 that names the problem):

- **Encoding.** UTF-8, with or without a byte-order mark. A file that is not UTF-8 is read as
  Windows-1252 (what Excel writes for "CSV" in Western European locales; it includes latin-1's
  letters) with a warning in the report; anything else is refused: UTF-16/UTF-32 (Excel's
  "Unicode text"), bytes Windows-1252 does not define, NUL bytes. JSON must be UTF-8.
- **Delimiter.** Comma, semicolon or tab (Excel writes ``;`` in es/pt/fr/de locales): the one
  that splits the header row into the most known column names.
- **Line endings.** ``\\r\\n``, ``\\n`` or a bare ``\\r`` (old Mac exports); a cell may hold a
  line break inside quotes.
- **Size.** At most :data:`MAX_FIELD_BYTES` per cell, :data:`MAX_ROWS` data rows and
  :data:`MAX_BODY_BYTES` per file.
- **Row numbers** are the spreadsheet's: the header is row 1, the first data row is row 2, and
  a blank line still counts as a row (a cell with a line break does not start a new one). JSON
  rows are numbered from 1 in list order.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.domain.errors import GatewayError
from gateway.domain.text import Text

MAX_ROWS = 100_000
MAX_FIELD_BYTES = 10 * 1024
MAX_BODY_BYTES = 32 * 1024 * 1024
COLUMNS = frozenset(
    {
        "email",
        "name",
        "description",
        "currency",
        "items",
        "amount",
        "ref",
        "valid_for",
        "locale",
        "due",
        "reminders",
    }
)
REQUIRED = frozenset({"email", "name", "ref"})
DELIMITERS = (",", ";", "\t")
# Translators: what the header row was split at, in "the header row read with commas: ...".
_NAMES = {",": Text("commas"), ";": Text("semicolons"), "\t": Text("tabs")}


class BulkFormatError(GatewayError):
    """The file itself cannot be read (encoding, not CSV/JSON, columns, sizes)."""


class BulkTooLarge(BulkFormatError):
    """The body is larger than :data:`MAX_BODY_BYTES` (a 413)."""


@dataclass(slots=True)
class FileRow:
    number: int  # the spreadsheet's row number (header = 1), or the JSON list position
    fields: dict[str, Any]
    extra: bool = False  # more cells than the header has columns


@dataclass(slots=True)
class BulkFile:
    rows: Iterable[FileRow]  # read once: CSV rows are parsed as they are consumed
    warnings: list[str] = field(default_factory=list)


def decode(body: bytes) -> tuple[str, list[str]]:
    """The text of a CSV body and the warnings to show (see the module docstring)."""
    if body.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise BulkFormatError(_unsupported("UTF-32"))
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise BulkFormatError(_unsupported(Text("UTF-16 (Excel's 'Unicode text')")))
    if b"\x00" in body:
        raise BulkFormatError(_unsupported(Text("binary, UTF-16 or UTF-32 (it has NUL bytes)")))
    try:
        return body.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        pass
    try:
        text = body.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise BulkFormatError(
            _unsupported(
                Text(
                    "neither UTF-8 nor Windows-1252 (byte 0x%(byte)s)",
                    byte=format(body[exc.start], "02X"),
                )
            )
        ) from None
    return text, [
        Text(
            "the file is not UTF-8: it was read as Windows-1252 (Western European); check names "
            "with accents below, or save it as 'CSV UTF-8' to be sure"
        )
    ]


def _unsupported(what: str) -> Text:
    # Translators: %(encoding)s names an encoding, e.g. "UTF-32" or "UTF-16 (Excel's ...)".
    return Text(
        "the file's encoding is %(encoding)s; save it as 'CSV UTF-8 (comma delimited)' and retry",
        encoding=what,
    )


def _header_cells(text: str, delimiter: str) -> list[str]:
    first = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    return [cell.strip().lower() for cell in first]


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the header into the most known columns (comma on a tie)."""
    head = text[: 64 * 1024]
    scores = [(len(COLUMNS & set(_header_cells(head, d))), -i, d) for i, d in enumerate(DELIMITERS)]
    return max(scores)[2]


def parse_csv(body: bytes | str) -> BulkFile:
    """Rows of a CSV with a header. ``items`` holds ``Desc=Amount[xQty]`` parts separated by
    ``|``; or an ``amount`` column makes one item described by ``description``."""
    warnings: list[str] = []
    if isinstance(body, str):
        text = body.lstrip("\ufeff")
    else:
        text, warnings = decode(body)
    if not text.strip():
        raise BulkFormatError(Text("the CSV is empty (expected a header row)"))
    delimiter = sniff_delimiter(text)
    records = _records(text, delimiter)
    header = [cell.strip().lower() for cell in next(records, [])]
    if not any(header):
        raise BulkFormatError(Text("the CSV is empty (expected a header row)"))
    _check_header(header, delimiter)
    # Rows are read as they are validated: a 100,000-row file is never held twice.
    return BulkFile(_rows(records, header), warnings)


def _rows(records: Iterator[list[str]], header: list[str]) -> Iterator[FileRow]:
    count = 0
    for number, cells in enumerate(records, start=2):
        if not any(cell.strip() for cell in cells):
            continue  # a blank row (still counted: the next row keeps the spreadsheet's number)
        if count >= MAX_ROWS:
            raise BulkFormatError(
                Text(
                    "more than %(max)s data rows; split the file (row %(row)s is past the cap)",
                    max=format(MAX_ROWS, ","),
                    row=number,
                )
            )
        for column, cell in zip(header, cells, strict=False):
            if len(cell.encode("utf-8", "surrogatepass")) > MAX_FIELD_BYTES:
                raise BulkFormatError(
                    Text(
                        "row %(row)s: the %(column)s cell is longer than %(size)s KB",
                        row=number,
                        column=column or Text("unnamed"),
                        size=MAX_FIELD_BYTES // 1024,
                    )
                )
        count += 1
        yield FileRow(number, dict(zip(header, cells, strict=False)), len(cells) > len(header))


def _records(text: str, delimiter: str) -> Iterator[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    number = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The csv module's own cap (128 KB a field) or a broken quote.
            if "field larger than field limit" in str(exc):
                raise BulkFormatError(
                    Text(
                        "row %(row)s: a cell is longer than %(size)s KB",
                        row=number + 1,
                        size=MAX_FIELD_BYTES // 1024,
                    )
                ) from None
            raise BulkFormatError(
                Text("row %(row)s: not readable as CSV (%(error)s)", row=number + 1, error=str(exc))
            ) from None
        number += 1
        yield cells


def _check_header(header: list[str], delimiter: str) -> None:
    known = set(header)
    missing = REQUIRED - known
    if missing:
        raise BulkFormatError(
            Text(
                "missing column(s): %(missing)s (the header row read with %(separator)s: "
                "%(header)s)",
                missing=", ".join(sorted(missing)),
                separator=_NAMES[delimiter],
                header=", ".join(repr(h) for h in header[:10]),
            )
        )
    if "items" not in known and "amount" not in known:
        raise BulkFormatError(Text("an 'items' or an 'amount' column is required"))
    unknown = sorted(known - COLUMNS)
    if unknown:
        raise BulkFormatError(
            Text(
                "unknown column(s): %(unknown)s (known: %(known)s)",
                unknown=", ".join(unknown),
                known=", ".join(sorted(COLUMNS)),
            )
        )
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise BulkFormatError(
            Text("column(s) given twice: %(columns)s", columns=", ".join(duplicated))
        )


def load_json(body: bytes | str) -> Any:
    """JSON text to data; a body nested too deep or not UTF-8 is a :class:`BulkFormatError`."""
    try:
        text = body.decode("utf-8-sig") if isinstance(body, bytes) else body
        return json.loads(text)
    except UnicodeDecodeError:
        raise BulkFormatError(Text("JSON must be UTF-8")) from None
    except RecursionError:
        raise BulkFormatError(Text("the JSON is nested too deeply")) from None
    except ValueError as exc:
        raise BulkFormatError(Text("not valid JSON: %(error)s", error=str(exc))) from None


def parse_json(data: object) -> BulkFile:
    """``[{...}, ...]`` or ``{"rows": [...]}``; items as strings or objects."""
    if isinstance(data, dict):
        data = data.get("rows")
    if not isinstance(data, list):
        raise BulkFormatError(Text('expected a list of rows or {"rows": [...]}'))
    if len(data) > MAX_ROWS:
        raise BulkFormatError(
            Text(
                "more than %(max)s rows (%(count)s); split the file",
                max=format(MAX_ROWS, ","),
                count=format(len(data), ","),
            )
        )
    if not all(isinstance(row, dict) for row in data):
        raise BulkFormatError(Text("every row must be a JSON object"))
    return BulkFile([FileRow(n, dict(row)) for n, row in enumerate(data, start=1)])


def as_file_rows(rows: object) -> Iterable[FileRow]:
    """Rows given as a :class:`BulkFile`, or a list of plain mappings (numbered from 1) or of
    :class:`FileRow`."""
    if isinstance(rows, BulkFile):
        return rows.rows
    result: list[FileRow] = []
    for number, row in enumerate(rows if isinstance(rows, list | tuple) else [], start=1):
        if isinstance(row, FileRow):
            result.append(row)
        elif isinstance(row, Mapping):
            result.append(FileRow(number, dict(row)))
    return result
