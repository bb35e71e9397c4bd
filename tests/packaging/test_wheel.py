"""A non-editable install renders pages (issue 11 item 7): the wheel built from this tree,
installed in a fresh venv, runs ``gateway demo`` in a folder outside the repository, and a
printed link's confirm page comes back with its stylesheet.

The fresh venv gets the dependencies the test runner already has (from the lock in CI) through a
path file, and the project only from the wheel (``--no-deps``): nothing is downloaded but the
build backend, and the editable install of the runner is not on its path.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import unused_port

from tests.harness import BROWSER_HEADERS
from tests.processes import terminate, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
_SKIP = shutil.ignore_patterns(
    ".git",
    ".venv",
    "var",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    "screenshots",
    "*.sqlite3*",
)


def build_wheel(into: Path) -> Path:
    source = into / "source"
    shutil.copytree(ROOT, source, ignore=_SKIP)  # the build never writes into the work tree
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(into), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = into.glob("checkout_link_gateway-*.whl")
    return wheel


def fresh_venv(path: Path, wheel: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=120)
    python = path / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    runner = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    # Plain path lines: the runner's own .pth files (its editable install) are not run.
    (Path(site) / "runner-dependencies.pth").write_text("\n".join(sorted(runner)) + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return path / "bin" / "gateway"


@pytest.mark.slow
async def test_the_installed_wheel_serves_a_confirm_page_with_its_stylesheet(
    tmp_path: Path,
) -> None:
    loop = asyncio.get_running_loop()
    wheel = await loop.run_in_executor(None, build_wheel, tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "gateway/templates/confirm.html" in names
    assert any(n.startswith("gateway/static/") and n.endswith(".css") for n in names)
    gateway = await loop.run_in_executor(None, fresh_venv, tmp_path / "venv", wheel)

    outside = tmp_path / "elsewhere"  # no templates/, static/ or gateway/ to fall back on
    outside.mkdir()
    port, emulator_port = unused_port(), unused_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "PYTHON"))}
    process = subprocess.Popen(
        [
            str(gateway),
            "demo",
            "--port",
            str(port),
            "--emulator-port",
            str(emulator_port),
            "--database",
            "demo.sqlite3",
        ],
        cwd=outside,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", process, 60)
        assert process.stdout is not None
        lines: list[str] = []
        while not any("Ctrl-C" in line for line in lines):
            line = await loop.run_in_executor(None, process.stdout.readline)
            assert line, "the demo stopped before printing its links"
            lines.append(line)
        banner = "".join(lines)
        fresh = re.search(r"^  fresh, one item +(http://\S+)$", banner, re.M)
        assert fresh, banner

        async with aiohttp.ClientSession(headers=BROWSER_HEADERS) as client:
            async with client.get(fresh[1]) as page:
                body = await page.text()
                assert page.status == 200, body
            assert "Spring season fee" in body and "<form" in body  # the confirm page
            sheet = re.search(r'<link rel="stylesheet" href="([^"]+)"', body)
            assert sheet, body
            async with client.get(f"http://127.0.0.1:{port}{sheet[1]}") as css:
                assert css.status == 200
                assert css.content_type == "text/css"
                assert "{" in await css.text()

        # What served them is the installed copy, not this work tree.
        check = "import gateway, sys; print(gateway.__file__.startswith(sys.prefix + '/lib/'))"
        where = subprocess.run(
            [str(gateway.parent / "python"), "-c", check],
            cwd=outside,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert where.stdout.strip() == "True", where
    finally:
        terminate(process)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()
    assert process.returncode == 0
