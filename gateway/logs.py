"""Structured logs: one JSON object per line, with the request id, and tokens redacted.

Redaction is a last line of defence (handlers already log ``/pay/<token>``): any value that looks
like a link token, a Stripe secret or a webhook secret is masked before a line is written.
"""

from __future__ import annotations

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
)
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


def redact(text: str) -> str:
    return _EMAIL.sub("[email]", _SECRETS.sub("[redacted]", text))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        from gateway.web.middleware import request_id_var

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
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(line, default=str))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(level: str = "INFO", as_json: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if as_json
        else TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The stripe SDK logs request URLs and bodies at INFO/DEBUG, the database drivers SQL with its
    # parameters, the SMTP libraries whole conversations: DEBUG is for the gateway's own lines.
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
