"""Real gateway processes for tests whose invariant is about processes (crashes, replicas)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO

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
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._collect()

    def _collect(self) -> None:
        if self.process and self.process.stderr and not self.process.stderr.closed:
            self.stderr += self.process.stderr.read().decode(errors="replace")
            self.process.stderr.close()


async def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll /healthz until the process answers (readiness polling, not a timing assumption)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as session:
        while loop.time() < deadline:
            if process.poll() is not None:
                err = process.stderr.read().decode() if process.stderr else ""
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
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None and not self._log.closed:
            self._log.seek(0)
            self.output += self._log.read().decode(errors="replace")
            self._log.close()
