"""No ``Authorization`` value reaches a log line, whatever its scheme, on any log path (issue 10
item 9: with ``Authorization: Token <key>\\x00`` aiohttp's parser error path logged the key).

The gateway runs on the real aiohttp server, with the product's own logging setup; requests are
raw bytes over a socket, so aiohttp's parser refuses them and its error path does the logging.
"""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway.logs import _QUIET as QUIET
from gateway.logs import REDACTING_FILTER, configure_logging, redact
from tests.harness import Harness, start_harness

KEY = "adm_treasurer_4f1c9e2a7b3d5e6f"
KEY_B64 = base64.b64encode(f"treasurer:{KEY}".encode()).decode()
AIOHTTP = ("aiohttp.server", "aiohttp.access", "aiohttp.web", "aiohttp.internal")

# Each is refused by aiohttp's parser (a control byte, or a space before the colon).
REFUSED_HEADERS = [
    f"Authorization: Token {KEY}\x00",
    f"Authorization: Bearer {KEY}\x01",
    f"authorization: Basic {KEY_B64}\x00",
    f"AUTHORIZATION: {KEY}\x00",
    f'Authorization : Digest username="treasurer", response="{KEY}"',
    f"Proxy-Authorization: Custom {KEY}\x7f",
    f"Authorization: Token abc\x00{KEY}",
]


@pytest.fixture(params=["json", "text"])
def product_logs(request: pytest.FixtureRequest) -> Iterator[Callable[[], str]]:
    """``configure_logging`` as ``gateway serve`` calls it, written to a buffer."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    levels = {name: logging.getLogger(name).level for name in QUIET}
    configure_logging("DEBUG", as_json=request.param == "json")
    buffer = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    try:
        yield buffer.getvalue
    finally:
        root.handlers[:], root.level = saved
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        for name in AIOHTTP:
            logging.getLogger(name).removeFilter(REDACTING_FILTER)


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str) -> Harness:
    return await start_harness(aiohttp_server, aiohttp_client, sqlite_url)


def assert_no_key(output: str) -> None:
    for secret in (KEY, KEY_B64, KEY[-12:]):
        assert secret not in output, output


async def test_aiohttps_parser_error_path_never_logs_the_key(
    h: Harness, product_logs: Callable[[], str]
) -> None:
    for header in REFUSED_HEADERS:
        raw = f"GET /admin/api/links HTTP/1.1\r\nHost: x\r\n{header}\r\n\r\n"
        answer = await h.send_raw(raw.encode("latin-1"))
        assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0]
    output = product_logs()
    # The error path really ran and logged, once per request, with the value masked.
    assert output.count("Error handling request") == len(REFUSED_HEADERS)
    assert output.count("[redacted]") >= len(REFUSED_HEADERS)
    assert_no_key(output)


async def test_json_lines_stay_json(h: Harness, product_logs: Callable[[], str]) -> None:
    await h.send_raw(f"GET / HTTP/1.1\r\nAuthorization: Token {KEY}\x00\r\n\r\n".encode())
    output = product_logs()
    if output.startswith("{"):
        for line in output.splitlines():
            json.loads(line)
    assert_no_key(output)


def test_messages_arguments_exceptions_and_stacks_are_scrubbed(
    product_logs: Callable[[], str],
) -> None:
    log = logging.getLogger("gateway.test")
    log.warning("headers %s", {"Authorization": f"Token {KEY}", "Host": "x"})
    log.warning("Authorization: %s", f"Basic {KEY_B64}")
    log.warning("got %r", f"authorization={KEY}")
    try:
        raise ValueError(f"b'Authorization: Custom {KEY}\\x00\\r\\nHost: x'")
    except ValueError:
        log.exception("failed")
    log.warning("where %s", f"Authorization: Bearer {KEY}", stack_info=True)
    log.error("extra", extra={"headers": {"authorization": f"Whatever {KEY}"}})
    assert_no_key(product_logs())


def test_a_handler_on_aiohttps_own_logger_also_gets_scrubbed_records(
    product_logs: Callable[[], str],
) -> None:
    own = io.StringIO()
    handler = logging.StreamHandler(own)  # someone's extra handler, without our formatter
    server_log = logging.getLogger("aiohttp.server")
    server_log.addHandler(handler)
    try:
        try:
            raise ValueError(f"Invalid header value char:\n\n  b'Authorization: Token {KEY}\\x00'")
        except ValueError:
            server_log.exception("Error handling request from %s", "127.0.0.1")
    finally:
        server_log.removeHandler(handler)
    assert "Error handling request" in own.getvalue()
    assert_no_key(own.getvalue())


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f"Authorization: Token {KEY}", "Authorization: [redacted]"),
        (f"b'Authorization: Token {KEY}\\r\\nHost: pay.example.org'", "Host: pay.example.org"),
        (f"sent Bearer {KEY} twice", "sent [redacted] twice"),
        ("the token expired", "the token expired"),
    ],
)
def test_redact_masks_the_value_and_keeps_what_follows_the_header(text: str, kept: str) -> None:
    cleaned = redact(text)
    assert KEY not in cleaned
    assert kept in cleaned
