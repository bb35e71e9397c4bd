"""Log lines stay valid text when what they quote was not (issue 10, item 5): header bytes that
are not UTF-8 reach Python as lone surrogates, which a UTF-8 stream cannot write and which a
strict JSON reader refuses as escapes."""

from __future__ import annotations

import json
import logging

from gateway.logs import JsonFormatter, TextFormatter

RAW = b"Mozilla/5.0 \xff\xfe\xfd".decode("utf-8", "surrogateescape")


def record() -> logging.LogRecord:
    made = logging.makeLogRecord(
        {"name": "gateway.test", "levelno": logging.WARNING, "levelname": "WARNING"}
    )
    made.msg, made.args = "odd visitor %s", (RAW,)
    made.__dict__.update({"user_agent": RAW, "seen": {"agents": [RAW, "ok 😀"]}})
    return made


def test_json_lines_hold_no_lone_surrogates() -> None:
    line = JsonFormatter().format(record())
    data = json.loads(line)
    for value in (data["message"], data["user_agent"], *data["seen"]["agents"]):
        value.encode("utf-8")  # raised UnicodeEncodeError before: "\udcff" survived the escape
    assert data["message"] == "odd visitor Mozilla/5.0 \ufffd\ufffd\ufffd"
    assert data["seen"]["agents"][1] == "ok 😀"  # a real character outside the BMP is kept


def test_text_lines_encode_as_utf8() -> None:
    line = TextFormatter("%(levelname)s %(message)s").format(record())
    assert line.encode("utf-8") == "WARNING odd visitor Mozilla/5.0 \ufffd\ufffd\ufffd".encode()
