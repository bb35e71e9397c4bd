"""The browser suite is skipped with its reason where Chromium is missing, except where
``GATEWAY_TEST_REQUIRE_BROWSER=1`` (CI) makes that a failure."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.processes import ROOT


def run_browser_test(**env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_TEST_")}
    environment.update(GATEWAY_TEST_CHROMIUM="/nonexistent/chromium", **env)
    return subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "-q"),
            "tests/e2e/test_browser_pages.py::test_invalid_link",
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_without_chromium_the_browser_tests_are_skipped_with_the_reason() -> None:
    result = run_browser_test()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "Chromium is not installed at /nonexistent/chromium" in result.stdout


def test_where_a_browser_is_required_its_absence_fails() -> None:
    result = run_browser_test(GATEWAY_TEST_REQUIRE_BROWSER="1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 error" in result.stdout
    assert "GATEWAY_TEST_REQUIRE_BROWSER=1, but Debian's Chromium" in result.stdout
