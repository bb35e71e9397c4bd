"""Structured logs: one JSON object per line, with the request id, and tokens redacted.

Redaction is a last line of defence (handlers already log ``/pay/<token>``): any value that looks
like a link token, a Stripe secret or a webhook secret is masked before a line is written, and so
is every ``Authorization`` value, whatever its scheme. aiohttp quotes a request's raw header line
when its parser refuses it (``Authorization: Token <key>\x00``), so a filter scrubs each record's
message, arguments, exception text and stack before any handler formats it, on the gateway's
handler and on aiohttp's own loggers; the formatters mask the finished line once more.

Header text may hold lone surrogates (aiohttp decodes bytes that are not UTF-8 with
``surrogateescape``): a UTF-8 stream cannot take them and strict JSON readers refuse their
escapes, so the formatters write U+FFFD in their place.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

_SECRETS = re.compile(
    r"lk_[A-Za-z0-9_-]{12}\.[A-Za-z0-9_-]{4,8}\.[A-Za-z0-9_-]{10,}"  # link tokens
    r"|\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9]+"  # Stripe secret / restricted keys
    r"|\bwhsec_[A-Za-z0-9]+"  # webhook secrets
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]+"  # Authorization headers
    r"|\b(?i:token|basic|digest)\s+[A-Za-z0-9._~+/=-]{8,}"  # other schemes' credentials
)
# An Authorization (or Proxy-Authorization) field, however written: a header line, a dict repr
# (``'Authorization': '...'``), a JSON key (``\"Authorization\": ...``).
_AUTH_FIELD = r"(?i:\b(?:proxy-)?authorization\b)(?:\\?[\"'])?\s*+[:=]\s*+"
# In plain text its value runs to the end of the line, whatever the scheme and quoting, or to an
# escaped line break (a repr of the raw header bytes: ``...Token <key>\x00\r\nHost: ...``).
_AUTH_TEXT = re.compile(rf"({_AUTH_FIELD})(?:[^\r\n\\]|\\(?![rn]).)+")
# In a JSON line, to the end of the JSON string or an escaped line break (``\n``).
_AUTH_JSON = re.compile(rf"({_AUTH_FIELD}(?:\\?\")?)(?:[^\"\\]|\\(?![rn]).)+")
# Payers' addresses are personal data: an error message that quotes one is still logged, masked.
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Libraries that log SQL parameters (payer names and addresses) or message bodies at DEBUG.
_QUIET = (
    "stripe",
    "aiohttp.access",
    "aiosqlite",
    "sqlalchemy",
    "asyncpg",
    "aiosmtplib",
    "mail.log",
)
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _valid(value: Any) -> Any:
    """``value`` with lone surrogates in its strings (nested ones too) replaced by U+FFFD."""
    if isinstance(value, str):
        return value if value.isascii() else _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {key: _valid(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_valid(item) for item in value]
    return value


def redact(text: str) -> str:
    text = _AUTH_TEXT.sub(r"\1[redacted]", text)
    return _EMAIL.sub("[email]", _SECRETS.sub("[redacted]", text))


def _redact_json(line: str) -> str:
    line = _AUTH_JSON.sub(r"\1[redacted]", line)
    return _EMAIL.sub("[email]", _SECRETS.sub("[redacted]", line))


class RedactingFilter(logging.Filter):
    """Scrubs a record in place before any handler sees it: the message with its arguments
    merged in, the exception text and the stack. Never drops a record."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
            cleaned = redact(message)
            if record.args or cleaned != message:
                record.msg, record.args = cleaned, None
            if record.exc_info and not record.exc_text:
                record.exc_text = self._formatter.formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = redact(record.exc_text)
            if record.stack_info:
                record.stack_info = redact(record.stack_info)
        except Exception:  # a malformed record is the formatter's to report; never lose it here
            return True
        return True


REDACTING_FILTER = RedactingFilter()
# The current request's id, set by the web edge (gateway.web.middleware) and written on every
# JSON line logged while it is handled; "-" outside a request.
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
# aiohttp's loggers: the parser error path (server), access lines, the app, the internals.
_AIOHTTP_LOGGERS = ("aiohttp.server", "aiohttp.access", "aiohttp.web", "aiohttp.internal")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_text:  # already scrubbed by RedactingFilter
            line["exception"] = record.exc_text
        elif record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = record.stack_info
        return _redact_json(json.dumps(_valid(line), default=lambda o: _valid(str(o))))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(_valid(super().format(record)))


def configure_logging(level: str = "INFO", as_json: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if as_json
        else TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(REDACTING_FILTER)
    for name in _AIOHTTP_LOGGERS:  # also for any handler attached to them directly
        logger = logging.getLogger(name)
        if REDACTING_FILTER not in logger.filters:
            logger.addFilter(REDACTING_FILTER)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The stripe SDK logs request URLs and bodies at INFO/DEBUG, the database drivers SQL with its
    # parameters, the SMTP libraries whole conversations: DEBUG is for the gateway's own lines.
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
