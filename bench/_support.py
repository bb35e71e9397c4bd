"""Plumbing for the hand-run benchmarks in bench/: child processes, readiness, wrk, RSS.

Nothing here knows about the gateway; bench/run.py and bench/pay.py say what to start and drive.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WRK_MARKER = "BENCH_JSON "


# --- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Processes:
    """Every child this benchmark starts; ``stop_all`` ends each one by its own pid.

    Children get their own session, so a Ctrl-C in the terminal reaches only the benchmark, which
    then stops them in order (SIGTERM, then SIGKILL after a grace period).
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path | None = None
    ) -> Child:
        log = self.log_dir / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child = Child(name, proc, log)
        self.children.append(child)
        return child

    def stop(self, child: Child, grace: float = 5.0) -> None:
        """Stop one child (SIGTERM, then SIGKILL after ``grace``) and forget it."""
        if child.alive():
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(signal.SIGTERM)
        try:
            child.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                child.proc.kill()
            child.proc.wait()
        self.children.remove(child)

    def stop_all(self, grace: float = 5.0) -> None:
        for child in reversed(self.children):
            if child.alive():
                with contextlib.suppress(ProcessLookupError):
                    child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in reversed(self.children):
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.kill()
                child.proc.wait()
        self.children.clear()


def run_checked(argv: Sequence[str], env: Mapping[str, str], cwd: Path | None = None) -> str:
    result = subprocess.run(
        list(argv), env=dict(env), cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return result.stdout


def wait_http(url: str, child: Child, *, timeout: float = 30.0, any_status: bool = False) -> None:
    """Poll ``url`` until it answers 200 (or any HTTP status with ``any_status``)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(
                f"{child.name} exited with status {child.proc.returncode} before it was ready:\n"
                + child.log_tail()
            )
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
                last = response.status
        except urllib.error.HTTPError as exc:
            if any_status:
                return
            last = exc.code
        except OSError as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"{child.name} not ready at {url} after {timeout:.0f}s (last: {last})")


# --- memory -------------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """Resident set size from /proc/<pid>/status (psutil is not a dependency)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for pid {pid}")


class RssSampler:
    """Samples a process's RSS in a background thread; ``peak`` and ``last`` in MB."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[float] = []
        self.times: list[float] = []  # seconds since the sampler started, one per sample
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            value = rss_mb(self.pid)
            self.times.append(time.monotonic() - self._started)
            self.samples.append(value)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def peak(self) -> float:
        return max(self.samples, default=0.0)

    @property
    def last(self) -> float:
        return self.samples[-1] if self.samples else 0.0


# --- wrk ----------------------------------------------------------------------------------------


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(
            "wrk not found: install it with `apt-get update && apt-get install -y wrk`"
        )
    return path


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string with only ASCII escapes is a valid Lua string


def wrk_script(
    *,
    paths: Sequence[str],
    method: str = "GET",
    agents: Sequence[tuple[str, str]] = (),
    headers: Mapping[str, str] | None = None,
    body: str | None = None,
    count_statuses: bool = False,
    paths_file: Path | None = None,
) -> str:
    """A wrk Lua script that walks ``paths`` × ``agents`` (user agent, Accept-Language).

    Requests are formatted once in ``init`` so wrk spends its time sending, not building strings;
    each thread starts at a different place in the list. ``done`` prints one JSON line (prefixed
    with ``BENCH_JSON``) that :func:`run_wrk` reads. With ``count_statuses`` a ``response`` hook
    tallies every status code (slower: wrk then hands each response to Lua).

    With ``paths_file`` (one path per line; LuaJIT caps a chunk at 65,536 constants, so 100,000
    links cannot sit in the script) the paths are read from it in ``init``, and each path is
    formatted once, with the agents in turn (path k with agent k mod agents): a walk reaches
    every path once per pass, and wrk keeps one request per path in memory, not one per pair.
    """
    paths_lua = ",\n".join(f"  {_lua_string(p)}" for p in paths)
    file_lua = "nil" if paths_file is None else _lua_string(str(paths_file))
    agents_lua = ",\n".join(
        f"  {{ua = {_lua_string(ua)}, lang = {_lua_string(lang)}}}" for ua, lang in agents
    )
    headers_lua = ",\n".join(
        f"  [{_lua_string(k)}] = {_lua_string(v)}" for k, v in (headers or {}).items()
    )
    body_lua = "nil" if body is None else _lua_string(body)
    response_hook = (
        """
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
"""
        if count_statuses
        else ""
    )
    return f"""-- generated by bench/_support.py
local paths = {{
{paths_lua}
}}
local agents = {{
{agents_lua}
}}
local extra = {{
{headers_lua}
}}
local method = {_lua_string(method)}
local body = {body_lua}
local paths_file = {file_lua}
local reqs = {{}}
local n = 0
local idx = 0
local threads = {{}}
local created = 0
statuses = {{}}

function setup(thread)
  created = created + 1
  thread:set("tid", created)
  table.insert(threads, thread)
end

function init(args)
  local per_pair = 1
  if paths_file then
    for line in io.lines(paths_file) do table.insert(paths, line) end
    per_pair = 0
  end
  local np = #paths
  local na = math.max(#agents, 1)
  for k = 0, np * (per_pair * (na - 1) + 1) - 1 do
    local p = k % np
    local h = {{}}
    for key, value in pairs(extra) do h[key] = value end
    if #agents > 0 then
      local a = agents[((math.floor(k / np) + p) % na) + 1]
      h["User-Agent"] = a.ua
      h["Accept-Language"] = a.lang
    end
    n = n + 1
    reqs[n] = wrk.format(method, paths[p + 1], h, body)
  end
  idx = (((tid or 1) - 1) * 7919) % n
end

function request()
  idx = idx + 1
  if idx > n then idx = 1 end
  return reqs[idx]
end
{response_hook}
function done(summary, latency, requests)
  local counts = {{}}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    if s then
      for code, count in pairs(s) do counts[code] = (counts[code] or 0) + count end
    end
  end
  local parts = {{}}
  for code, count in pairs(counts) do
    table.insert(parts, string.format('"%d": %d', code, count))
  end
  local e = summary.errors
  io.write(string.format(
    '{WRK_MARKER}{{"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, '
      .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "statuses": {{%s}}}}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    table.concat(parts, ", ")))
end
"""


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[int, int] = field(default_factory=dict)
    rss_peak_mb: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)  # anything else the script printed

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def error_total(self) -> int:
        return sum(self.errors.values())


_WRK_FIELDS = frozenset(
    [
        "requests",
        "duration_us",
        "bytes",
        "connect",
        "read",
        "write",
        "status",
        "timeout",
        "p50_us",
        "p90_us",
        "p99_us",
        "max_us",
        "statuses",
    ]
)


def run_wrk(
    url: str,
    script: Path,
    *,
    duration: float,
    threads: int,
    connections: int,
    timeout: str = "2s",
) -> WrkResult:
    argv = [
        require_wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration:g}s",
        f"--timeout={timeout}",
        "-s",
        str(script),
        url,
    ]
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    line = next((row for row in result.stdout.splitlines() if row.startswith(WRK_MARKER)), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    data = json.loads(line[len(WRK_MARKER) :])
    return WrkResult(
        requests=data["requests"],
        duration_s=data["duration_us"] / 1e6,
        errors={k: data[k] for k in ("connect", "read", "write", "status", "timeout")},
        p50_ms=data["p50_us"] / 1000.0,
        p90_ms=data["p90_us"] / 1000.0,
        p99_ms=data["p99_us"] / 1000.0,
        max_ms=data["max_us"] / 1000.0,
        statuses={int(k): v for k, v in data["statuses"].items()},
        extra={k: v for k, v in data.items() if k not in _WRK_FIELDS},
    )


@dataclass
class Load:
    """One wrk process: where it sends, what script, and the server whose RSS is sampled."""

    url: str
    script: Path
    child: Child


def run_loads(
    loads: Sequence[Load],
    *,
    duration: float,
    threads: int,
    connections: int,
    rss_interval: float = 0.25,
) -> list[tuple[WrkResult, RssSampler]]:
    """Run one wrk per load at the same time (each with ``threads`` and ``connections``),
    sampling each server's RSS meanwhile. Raises if a server is not running."""
    for load in loads:
        if not load.child.alive():
            raise RuntimeError(
                f"{load.child.name} died (exit {load.child.proc.returncode}):\n"
                + load.child.log_tail()
            )
    samplers = [RssSampler(load.child.pid, rss_interval) for load in loads]
    with contextlib.ExitStack() as stack:
        for sampler in samplers:
            stack.enter_context(sampler)
        with ThreadPoolExecutor(len(loads)) as pool:
            futures = [
                pool.submit(
                    run_wrk,
                    load.url,
                    load.script,
                    duration=duration,
                    threads=threads,
                    connections=connections,
                )
                for load in loads
            ]
            results = [future.result() for future in futures]
    for result, sampler in zip(results, samplers, strict=True):
        result.rss_peak_mb = sampler.peak
    return list(zip(results, samplers, strict=True))


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def environ_with(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(extra)
    return env
