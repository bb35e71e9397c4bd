"""Real gateway processes for tests whose invariant is about processes (crashes, replicas)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import aiohttp
from aiohttp.test_utils import unused_port

from tests.harness import TOKEN_SECRET, WEBHOOK_SECRET

ROOT = Path(__file__).resolve().parent.parent


def gateway_env(database_url: str, emulator_url: str, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        {
            "GATEWAY_CONFIG": str(ROOT / "config.toml"),
            "GATEWAY_DATABASE_URL": database_url,
            "GATEWAY_TOKENS_SECRET_KEYS": TOKEN_SECRET,
            "GATEWAY_STRIPE_API_KEY": "sk_test_processes",
            "GATEWAY_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "GATEWAY_STRIPE_API_BASE": emulator_url,
            "GATEWAY_STRIPE_MAX_RETRIES": "2",
            "GATEWAY_SERVER_HOST": "127.0.0.1",
            "GATEWAY_SERVER_PORT": str(port),
            "GATEWAY_SERVER_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "GATEWAY_LOG_LEVEL": "WARNING",
        }
    )
    env.update(extra)
    return env


class GatewayProcess:
    def __init__(self, database_url: str, emulator_url: str, **extra: str) -> None:
        self.port = unused_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = gateway_env(database_url, emulator_url, self.port, **extra)
        self.process: subprocess.Popen[bytes] | None = None
        self.stderr = ""

    async def start(self, timeout: float = 30.0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve"],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        await wait_healthy(self.url, self.process, timeout)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._collect()

    def stop(self) -> None:
        if self.process:
            terminate(self.process)
        self._collect()

    def _collect(self) -> None:
        if self.process and self.process.stderr and not self.process.stderr.closed:
            self.stderr += self.process.stderr.read().decode(errors="replace")
            self.process.stderr.close()


def terminate(process: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL if the process has not exited 15 seconds later."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def wait_healthy(url: str, process: subprocess.Popen[Any], timeout: float) -> None:
    """Poll /healthz until the process answers (readiness polling, not a timing assumption)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as session:
        while loop.time() < deadline:
            if process.poll() is not None:
                err = process.stderr.read() if process.stderr else ""
                if isinstance(err, bytes):  # text=True processes (the demo) give str
                    err = err.decode(errors="replace")
                raise RuntimeError(f"gateway exited with {process.returncode}: {err[-2000:]}")
            try:
                async with session.get(f"{url}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError(f"gateway at {url} did not become healthy")


def run_cli(args: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        env=dict(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class EmulatorProcess:
    """The Stripe emulator as a process of its own (``gateway emulator``), so that it outlives
    the gateway processes a test kills. ``webhook_mode="manual"`` holds every webhook until
    ``POST /_emulator/webhooks/deliver``. Its output goes to a temporary file (a pipe nobody
    reads would block it), shown by :attr:`output` after :meth:`stop`."""

    def __init__(self, *args: str, port: int | None = None, webhook_mode: str = "auto") -> None:
        if webhook_mode not in ("auto", "manual"):
            raise ValueError(f"webhook_mode must be auto or manual, not {webhook_mode!r}")
        self.port = port or unused_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = ["--host", "127.0.0.1", "--port", str(self.port), *args]
        self.webhook_mode = webhook_mode
        self.process: subprocess.Popen[bytes] | None = None
        self.output = ""
        self._log: IO[bytes] | None = None

    async def start(self, timeout: float = 30.0) -> None:
        command = [
            sys.executable,
            "-m",
            "gateway.cli",
            "emulator",
            *self.args,
            "--webhook-mode",
            self.webhook_mode,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with aiohttp.ClientSession() as session:
            while loop.time() < deadline:
                if self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError(
                        f"emulator exited with {self.process.returncode}: {self.output[-2000:]}"
                    )
                try:
                    async with session.get(f"{self.url}/_emulator/state") as response:
                        if response.status == 200:
                            state = await response.json()
                            assert state["webhooks"]["mode"] == self.webhook_mode, state
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        self.stop()
        raise TimeoutError(f"emulator at {self.url} did not answer /_emulator/state")

    def stop(self) -> None:
        if self.process:
            terminate(self.process)
        if self._log is not None and not self._log.closed:
            self._log.seek(0)
            self.output += self._log.read().decode(errors="replace")
            self._log.close()


class DemoProcess:
    """``gateway demo`` as a parent meets it: one process on free ports, with its SQLite file
    at ``database`` and no ``GATEWAY_*`` settings from the test's environment. ``async with``
    starts it and stops it (SIGTERM, as a service manager would); its exit status is then in
    :attr:`returncode`."""

    def __init__(self, database: Path) -> None:
        self.port = unused_port()
        self.emulator_port = unused_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database = database
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        self.process: subprocess.Popen[str] | None = None
        self.returncode: int | None = None

    async def __aenter__(self) -> DemoProcess:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "demo",
                "--port",
                str(self.port),
                "--emulator-port",
                str(self.emulator_port),
                "--database",
                str(self.database),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            await wait_healthy(self.url, self.process, 30)
        except BaseException:
            self.stop()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()

    async def read_until(self, marker: str) -> str:
        """Its output, line by line, up to the first line that contains ``marker``."""
        assert self.process is not None and self.process.stdout is not None
        lines: list[str] = []
        loop = asyncio.get_running_loop()
        while not any(marker in line for line in lines):
            line = await loop.run_in_executor(None, self.process.stdout.readline)
            assert line, f"demo stopped before printing {marker!r}"
            lines.append(line)
        return "".join(lines)

    def stop(self) -> None:
        if self.process is None:
            return
        terminate(self.process)
        for stream in (self.process.stdout, self.process.stderr):
            if stream:
                stream.close()
        self.returncode = self.process.returncode
