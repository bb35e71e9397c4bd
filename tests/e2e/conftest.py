"""The browser suite's shared parts: one ``gateway demo`` process and one headless Chromium for
the whole run (see ``browser``).

The browser is Debian's Chromium at /usr/bin/chromium, driven by Playwright (never a browser
Playwright downloads). Without it the browser tests are skipped with the reason, except when
``GATEWAY_TEST_REQUIRE_BROWSER=1`` (CI sets it, after installing Chromium): then a missing
browser is a failure.
"""

from __future__ import annotations

import json
import os
import secrets
import selectors
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import unused_port

from tests.processes import ROOT, terminate

CHROMIUM = Path(os.environ.get("GATEWAY_TEST_CHROMIUM", "/usr/bin/chromium"))
REQUIRE_BROWSER = os.environ.get("GATEWAY_TEST_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CONTACT = "treasurer@riverside.example"


def _unavailable() -> str | None:
    if not CHROMIUM.exists():
        return f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    try:
        import axe_playwright_python  # noqa: F401
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"the browser test packages are missing ({exc.name}): pip install -e '.[dev]'"
    return None


# Module-scoped, and all the browser tests are in one module, so one browser and one demo
# serve the whole run. Not session-scoped: while Playwright's sync API is open, asyncio sees
# its loop as running in this thread, and the async tests of later modules could not start.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _unavailable()
    if reason is not None:
        if REQUIRE_BROWSER:
            pytest.fail(f"GATEWAY_TEST_REQUIRE_BROWSER=1, but {reason}", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass(frozen=True)
class Demo:
    url: str
    emulator_url: str
    api_key: str
    samples: dict[str, dict[str, Any]]
    # The console's demo accounts: {"password": ..., "accounts": {role: email}}.
    console: dict[str, Any]

    def request(self, method: str, url: str, body: Any = None, key: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        assert url.startswith("http://127.0.0.1:"), url  # the demo and its emulator only
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read() or b"null")

    def issue(
        self, *items: str, description: str = "Spring season fee", locale: str | None = None
    ) -> str:
        """A new link through the admin API (in ``locale``, or none); its URL."""
        body: dict[str, Any] = {
            "email": "sam.parent@example.com",
            "name": "Sam Rivera",
            "description": description,
            "currency": "usd",
            "items": list(items),
        }
        if locale is not None:
            body["locale"] = locale
        return str(self.request("POST", f"{self.url}/admin/api/links", body, key=True)["url"])

    def emulator(self, path: str, body: Any = None) -> Any:
        return self.request("POST", f"{self.emulator_url}/_emulator{path}", body or {})


def _read_until(process: subprocess.Popen[bytes], marker: str, timeout: float) -> str:
    """The process's output up to ``marker`` (waits on the pipe itself, not a timer)."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while marker.encode() not in seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise TimeoutError(f"the demo did not print {marker!r}: {seen[-2000:]!r}")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"the demo stopped: {seen[-2000:]!r}")
            seen += chunk
    return seen.decode(errors="replace")


@pytest.fixture(scope="module")
def demo(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """``gateway demo`` with a contact address and a known admin key (to issue links)."""
    port, emulator_port = unused_port(), unused_port()
    api_key = secrets.token_urlsafe(18)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        {
            "GATEWAY_CHECKOUT_CONTACT_EMAIL": CONTACT,
            "GATEWAY_ADMIN_API_KEYS": f"e2e:{api_key}",
        }
    )
    database = tmp_path_factory.mktemp("browser") / "demo.sqlite3"
    command = [sys.executable, "-m", "gateway.cli", "demo", "--port", str(port)]
    command += ["--emulator-port", str(emulator_port), "--database", str(database)]
    log = (database.parent / "demo.log").open("w")  # its log lines: a full pipe would block it
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log)
    try:
        _read_until(process, "Ctrl-C stops the demo", timeout=60)
        url = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{url}/_demo/links.json", timeout=10) as response:  # noqa: S310
            listed = json.loads(response.read())
        samples = {s["key"]: s for s in listed["links"]}
        console = listed.get("console") or {}
        yield Demo(url, f"http://127.0.0.1:{emulator_port}", api_key, samples, console)
    finally:
        terminate(process)
        if process.stdout:
            process.stdout.close()
        log.close()
