"""Benchmark the payer's hot paths against a bare aiohttp handler, side by side (docs/design.md §8).

Run by hand, not by the test suite::

    .venv/bin/python bench/pay.py --duration 10 --rounds 3 [--json]

Starts, each as its own process on a free loopback port: ``bench/hello.py`` (the baseline), the
Stripe emulator (``gateway emulator``) and the gateway (``gateway serve`` on SQLite in a temporary
directory, configured only by environment variables). It issues ``--links`` distinct links,
presses Pay once on each (so each has a fresh Checkout Session), then drives three targets with
wrk, interleaved round by round:

- ``bare aiohttp hello``  GET / on bench/hello.py;
- ``human GET /pay``      GET /pay/{token} over every link, phone browsers and in-app browsers
                          with Accept-Language (expect 200, the confirm page);
- ``POST reuse``          POST /pay/{token} over every link, each reusing its fresh session
                          (expect 303 to the emulator's hosted page, no Stripe call).

Requests/s is the median over rounds; the ratio is to the bare handler measured in the same run.
Errors are wrk's socket errors plus every response outside 2xx/3xx; a final short pass with a
per-response hook checks each target answered exactly the status it should. RSS is the peak
VmRSS of the serving process while wrk ran.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import (  # bench/ is not a package: found through sys.path above
    Child,
    Processes,
    RssSampler,
    WrkResult,
    environ_with,
    free_port,
    median,
    require_wrk,
    run_checked,
    run_wrk,
    wait_http,
    wrk_script,
)

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent

# What a parent's phone sends when they tap the link in an email, a text or a chat app.
PHONE_AGENTS: list[tuple[str, str, str]] = [
    (
        "iPhone Safari",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        "en-US,en;q=0.9",
    ),
    (
        "iPhone Safari (older)",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
        "es-US,es;q=0.9,en;q=0.8",
    ),
    (
        "Android Chrome",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.6367.82 Mobile Safari/537.36",
        "en-US,en;q=0.9",
    ),
    (
        "Android Chrome (Samsung)",
        "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/123.0.6312.99 Mobile Safari/537.36",
        "en-GB,en;q=0.9",
    ),
    (
        "Facebook in-app (iOS)",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/458.0.0.38.108;FBBV/569181180;"
        "FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.4.1;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
        "en-US,en;q=0.9",
    ),
    (
        "Facebook in-app (Android)",
        "Mozilla/5.0 (Linux; Android 14; SM-G991B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 "
        "[FB_IAB/FB4A;FBAV/460.0.0.48.109;]",
        "en-US,en;q=0.9",
    ),
    (
        "Instagram in-app (iOS)",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148 Instagram 327.1.6.30.88 (iPhone13,2; iOS 17_4; "
        "en_US; en; scale=3.00; 1170x2532; 587497424)",
        "en-US,en;q=0.9",
    ),
    (
        "Instagram in-app (Android)",
        "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230805.001; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/123.0.6312.118 Mobile Safari/537.36 "
        "Instagram 326.0.0.42.90 Android (33/13; 420dpi; 1080x2400; Google/google; Pixel 7; "
        "panther; panther; en_US; 587254421)",
        "fr-CA,fr;q=0.9,en;q=0.8",
    ),
]
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
CONFIRM_MARKER = '<form method="post"'

# docs/design.md §8, as a share of the bare aiohttp handler in the same run.
TARGETS: dict[str, dict[str, Any]] = {
    "hello": {"label": "bare aiohttp hello", "expect": 200},
    "get": {"label": "human GET /pay", "expect": 200, "min_ratio": 0.30, "max_p99_ms": 15.0},
    "post": {"label": "POST reuse", "expect": 303, "min_ratio": 0.15},
    "bot": {"label": "bot preview GET", "expect": 200, "min_ratio": 0.40},
    "invalid": {"label": "invalid token GET", "expect": 404, "min_ratio": 0.40},
}

# Link-preview fetchers and mail-client previewers that open every emailed link.
BOT_AGENTS = [
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", ""),
    ("facebookexternalhit/1.1 Facebot Twitterbot/1.0", ""),
    ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", ""),
    ("WhatsApp/2.23.20.0 A", ""),
    ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", ""),
    ("TelegramBot (like TwitterBot)", ""),
]


def forged(token: str) -> str:
    """The same shape with one signature character changed (mid-signature: the last base64
    character may only carry unused bits)."""
    i = len(token) - 10
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]


# --- setup --------------------------------------------------------------------------------------


def gateway_env(tmp: Path, port: int, emulator_port: int, webhook_secret: str) -> dict[str, str]:
    config = tmp / "config.toml"  # empty: the project's ./config.toml must not leak in
    config.write_text("# bench/pay.py: everything comes from the environment\n")
    return environ_with(
        {
            "GATEWAY_CONFIG": str(config),
            "GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bench.sqlite3",
            "GATEWAY_TOKENS_SECRET_KEYS": "bench-" + secrets.token_hex(16),
            "GATEWAY_STRIPE_API_KEY": "sk_test_bench",
            "GATEWAY_STRIPE_WEBHOOK_SECRET": webhook_secret,
            "GATEWAY_STRIPE_API_BASE": f"http://127.0.0.1:{emulator_port}",
            "GATEWAY_SERVER_HOST": "127.0.0.1",
            "GATEWAY_SERVER_PORT": str(port),
            "GATEWAY_SERVER_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "GATEWAY_LOG_LEVEL": "WARNING",
            "GATEWAY_CHECKOUT_ORG_NAME": "Riverside Youth Basketball",
        }
    )


async def issue_links(env: dict[str, str], count: int) -> list[str]:
    """Issue ``count`` links in-process against the gateway's database and settings."""
    return [token for _, token in await issue_link_records(env, count)]


async def issue_link_records(env: dict[str, str], count: int) -> list[tuple[str, str]]:
    """Like :func:`issue_links`, with each link's id: ``(link_id, token)``."""
    from gateway.config import load_settings
    from gateway.domain.links import validate_new_link
    from gateway.runtime import open_runtime

    settings = load_settings(env=env)
    links: list[tuple[str, str]] = []
    async with open_runtime(settings, migrate=False) as rt:
        for i in range(count):
            new = validate_new_link(
                email=f"parent{i}@example.com",
                name=f"Parent {i}",
                description="Spring season",
                currency="usd",
                items=[f"Spring fee={100 + i % 50}.00", "Jersey=25.00x2"],
                ref=f"bench/{i}",
                valid_for=30 * 86400,
                max_valid_for=settings.tokens.max_age,
            )
            issued = await rt.links.issue(new, actor="bench")
            links.append((issued.id, issued.token))
    return links


async def prepare_links(base: str, emulator: str, tokens: list[str]) -> dict[str, Any]:
    """Check every phone agent gets the confirm page, then press Pay once on every link.

    Returns what was seen, so a wrong page or status stops the benchmark before wrk runs.
    """
    facts: dict[str, Any] = {}
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for i, (name, ua, lang) in enumerate(PHONE_AGENTS):
            token = tokens[i % len(tokens)]
            headers = {"User-Agent": ua, "Accept-Language": lang, "Accept": BROWSER_ACCEPT}
            async with http.get(f"{base}/pay/{token}", headers=headers) as resp:
                text = await resp.text()
                if resp.status != 200 or CONFIRM_MARKER not in text:
                    raise RuntimeError(
                        f"GET /pay as {name}: status {resp.status}, "
                        f"confirm page: {CONFIRM_MARKER in text} (classified as a bot?)"
                    )
        first: dict[str, str] = {}
        ua, lang = PHONE_AGENTS[0][1], PHONE_AGENTS[0][2]
        post_headers = {"User-Agent": ua, "Accept-Language": lang, "Origin": "null"}
        started = time.perf_counter()
        for token in tokens:
            async with http.post(
                f"{base}/pay/{token}", headers=post_headers, allow_redirects=False
            ) as resp:
                if resp.status != 303:
                    raise RuntimeError(
                        f"first POST /pay: {resp.status} {(await resp.text())[:300]}"
                    )
                first[token] = resp.headers["Location"]
        facts["first_post_ms"] = (time.perf_counter() - started) * 1000 / len(tokens)
        # A second press must land on the same session: that is the path wrk will measure.
        for token in tokens[:10]:
            async with http.post(
                f"{base}/pay/{token}", headers=post_headers, allow_redirects=False
            ) as resp:
                if resp.status != 303 or resp.headers["Location"] != first[token]:
                    raise RuntimeError(
                        f"second POST /pay did not reuse the session: {resp.status} "
                        f"{resp.headers.get('Location')} != {first[token]}"
                    )
        facts["sessions_after_prepare"] = await count_sessions(http, emulator)
    return facts


async def count_sessions(http: aiohttp.ClientSession, emulator: str) -> int:
    async with http.get(f"{emulator}/_emulator/sessions") as resp:
        resp.raise_for_status()
        return len((await resp.json())["data"])


async def sessions_now(emulator: str) -> int:
    async with aiohttp.ClientSession() as http:
        return await count_sessions(http, emulator)


# --- the run ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Target:
    key: str
    url: str
    script: Path
    check_script: Path
    child: Child
    rounds: list[WrkResult] = dataclasses.field(default_factory=list)
    check: WrkResult | None = None


def write_scripts(tmp: Path, tokens: list[str]) -> dict[str, tuple[Path, Path]]:
    paths = [f"/pay/{t}" for t in tokens]
    agents = [(ua, lang) for _, ua, lang in PHONE_AGENTS]
    specs: dict[str, dict[str, Any]] = {
        "hello": {"paths": ["/"]},
        "get": {"paths": paths, "agents": agents, "headers": {"Accept": BROWSER_ACCEPT}},
        "post": {
            "paths": paths,
            "agents": agents,
            "method": "POST",
            # What the confirm page's no-referrer form sends: an empty form, Origin: null.
            "headers": {
                "Accept": BROWSER_ACCEPT,
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": "null",
            },
            "body": "",
        },
        "bot": {"paths": paths, "agents": BOT_AGENTS},
        "invalid": {
            "paths": [f"/pay/{forged(t)}" for t in tokens],
            "agents": agents,
            "headers": {"Accept": BROWSER_ACCEPT},
        },
    }
    out: dict[str, tuple[Path, Path]] = {}
    for key, spec in specs.items():
        timed = tmp / f"{key}.lua"
        checked = tmp / f"{key}-check.lua"
        timed.write_text(wrk_script(**spec))
        checked.write_text(wrk_script(**spec, count_statuses=True))
        out[key] = (timed, checked)
    return out


def run_bench(args: argparse.Namespace, tmp: Path, procs: Processes) -> dict[str, Any]:
    require_wrk()
    code = code_under_test()  # before the run: others may commit while it runs
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    hello_port, emulator_port, gateway_port = free_port(), free_port(), free_port()
    webhook_secret = "whsec_bench_" + secrets.token_hex(8)
    env = gateway_env(tmp, gateway_port, emulator_port, webhook_secret)
    gateway_bin = str(VENV_BIN / "gateway")
    base = f"http://127.0.0.1:{gateway_port}"
    emulator = f"http://127.0.0.1:{emulator_port}"

    log(f"bench: logs and database in {tmp}")
    hello = procs.start(
        "hello", [sys.executable, str(BENCH_DIR / "hello.py"), str(hello_port)], env
    )
    emu = procs.start(
        "emulator",
        [
            gateway_bin,
            "emulator",
            "--port",
            str(emulator_port),
            "--webhook-url",
            f"{base}/stripe/webhook",
            "--webhook-secret",
            webhook_secret,
        ],
        env,
        cwd=tmp,
    )
    run_checked([gateway_bin, "db", "upgrade"], env, cwd=tmp)
    gateway = procs.start("gateway", [gateway_bin, "serve"], env, cwd=tmp)
    wait_http(f"http://127.0.0.1:{hello_port}/healthz", hello)
    wait_http(f"{emulator}/_emulator/state", emu)
    wait_http(f"{base}/healthz", gateway)

    log(f"bench: issuing {args.links} links")
    tokens = asyncio.run(issue_links(env, args.links))
    log("bench: checking the pages and pressing Pay once on each link")
    facts = asyncio.run(prepare_links(base, emulator, tokens))
    scripts = write_scripts(tmp, tokens)
    targets = [
        Target("hello", f"http://127.0.0.1:{hello_port}", *scripts["hello"], child=hello),
        Target("get", base, *scripts["get"], child=gateway),
        Target("post", base, *scripts["post"], child=gateway),
        Target("bot", base, *scripts["bot"], child=gateway),
        Target("invalid", base, *scripts["invalid"], child=gateway),
    ]
    wrk_opts = {"threads": args.threads, "connections": args.connections}

    def drive(target: Target, script: Path, duration: float) -> WrkResult:
        if not target.child.alive():
            raise RuntimeError(
                f"{target.child.name} died (exit {target.child.proc.returncode}):\n"
                + target.child.log_tail()
            )
        with RssSampler(target.child.pid) as rss:
            result = run_wrk(target.url, script, duration=duration, **wrk_opts)
        result.rss_peak_mb = rss.peak
        return result

    if args.warmup > 0:
        for target in targets:
            log(f"bench: warm-up {target.key} {args.warmup:g}s")
            drive(target, target.script, args.warmup)
    for round_no in range(1, args.rounds + 1):
        for target in targets:
            result = drive(target, target.script, args.duration)
            target.rounds.append(result)
            log(
                f"bench: round {round_no}/{args.rounds} {target.key:5} "
                f"{result.rps:9.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                f"p99 {result.p99_ms:7.2f} ms  errors {result.error_total}  "
                f"rss {result.rss_peak_mb:.1f} MB"
            )
    if args.check > 0:
        for target in targets:
            target.check = drive(target, target.check_script, args.check)
            log(f"bench: status check {target.key}: {target.check.statuses}")

    sessions_after = asyncio.run(sessions_now(emulator))
    report = summarise(args, targets, facts, sessions_after, gateway)
    report["code"] = code
    return report


# --- report -------------------------------------------------------------------------------------


def gateway_log_summary(child: Child) -> dict[str, Any]:
    """Count the gateway's WARNING/ERROR lines by message, to report what went wrong under load."""
    counts: Counter[str] = Counter()
    try:
        lines = child.log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return {}
    for line in lines:
        try:
            record = json.loads(line)
            key = f"{record.get('level', '?')}: {record.get('message') or record.get('msg')}"
            if record.get("exc_info") or record.get("exception"):
                exc = str(record.get("exc_info") or record.get("exception")).strip()
                key += " | " + exc.splitlines()[-1][:200]
        except (ValueError, AttributeError):
            key = re.sub(r"\d+", "N", line.strip())[:200]
        if key:
            counts[key] += 1
    return dict(counts.most_common(10))


def code_under_test() -> dict[str, Any]:
    """The commit measured, and any uncommitted gateway files (the numbers describe those too)."""

    def git(*argv: str) -> str:
        result = subprocess.run(
            ["git", *argv], cwd=ROOT, capture_output=True, text=True, check=False
        )
        return result.stdout

    dirty = [line[3:] for line in git("status", "--porcelain", "--", "gateway").splitlines()]
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip(),
        "uncommitted_gateway_files": dirty,
    }


def summarise(
    args: argparse.Namespace,
    targets: list[Target],
    facts: dict[str, Any],
    sessions_after: int,
    gateway: Child,
) -> dict[str, Any]:
    base_rps = median([r.rps for r in targets[0].rounds])
    rows = []
    for target in targets:
        spec = TARGETS[target.key]
        rps = median([r.rps for r in target.rounds])
        errors: Counter[str] = Counter()
        for r in target.rounds:
            errors.update(r.errors)
        if spec["expect"] >= 400:
            # wrk counts every 4xx as an error; here a 4xx is the answer (the status check
            # below still flags any other status).
            errors.pop("status", None)
        check = target.check
        unexpected = (
            {code: n for code, n in check.statuses.items() if code != spec["expect"]}
            if check
            else {}
        )
        row: dict[str, Any] = {
            "key": target.key,
            "label": spec["label"],
            "rps": rps,
            "rps_rounds": [round(r.rps, 1) for r in target.rounds],
            "p50_ms": median([r.p50_ms for r in target.rounds]),
            "p99_ms": median([r.p99_ms for r in target.rounds]),
            "max_ms": max(r.max_ms for r in target.rounds),
            "requests": sum(r.requests for r in target.rounds),
            "errors": sum(errors.values()),
            "error_kinds": {k: v for k, v in errors.items() if v},
            "expected_status": spec["expect"],
            "check_statuses": check.statuses if check else None,
            "unexpected_statuses": unexpected,
            "rss_mb": max(r.rss_peak_mb for r in target.rounds),
            "ratio": rps / base_rps if base_rps else 0.0,
        }
        if "min_ratio" in spec:
            target_text = f">= {spec['min_ratio']:.0%}"
            met = row["ratio"] >= spec["min_ratio"]
            if "max_p99_ms" in spec:
                target_text += f", p99 < {spec['max_p99_ms']:g} ms"
                met = met and row["p99_ms"] < spec["max_p99_ms"]
            met = met and row["errors"] == 0 and not unexpected
            row["target"] = target_text
            row["met"] = met
        else:
            row["target"] = "baseline"
            row["met"] = None
        rows.append(row)
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            "duration_s": args.duration,
            "rounds": args.rounds,
            "warmup_s": args.warmup,
            "check_s": args.check,
            "threads": args.threads,
            "connections": args.connections,
            "links": args.links,
            "user_agents": [name for name, _, _ in PHONE_AGENTS],
        },
        "rows": rows,
        "emulator_sessions": {
            "after_first_press": facts["sessions_after_prepare"],
            "after_benchmark": sessions_after,
        },
        "first_post_ms_mean": facts["first_post_ms"],
        "gateway_alive": gateway.alive(),
        "gateway_log": gateway_log_summary(gateway),
    }


def print_table(report: dict[str, Any]) -> None:
    headers = ["row", "req/s", "p50 ms", "p99 ms", "errors", "RSS MB", "ratio", "target", "met"]
    table = []
    for row in report["rows"]:
        met = {True: "yes", False: "NO", None: "-"}[row["met"]]
        errors = str(row["errors"])
        if row["unexpected_statuses"]:
            errors += " +" + ",".join(f"{c}x{n}" for c, n in row["unexpected_statuses"].items())
        table.append(
            [
                row["label"],
                f"{row['rps']:.0f}",
                f"{row['p50_ms']:.2f}",
                f"{row['p99_ms']:.2f}",
                errors,
                f"{row['rss_mb']:.1f}",
                f"{row['ratio']:.1%}" if row["key"] != "hello" else "100%",
                row["target"],
                met,
            ]
        )
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(headers)]
    s = report["settings"]
    print(
        f"{report['date']}  {report['machine']['cpus']} cpus  python {report['machine']['python']}"
        f"  wrk -t{s['threads']} -c{s['connections']} -d{s['duration_s']:g}s x {s['rounds']} "
        f"rounds, {s['links']} links"
    )
    code = report["code"]
    dirty = code["uncommitted_gateway_files"]
    print(
        f"gateway at {code['commit']}"
        + (f" plus uncommitted changes to {', '.join(dirty)}" if dirty else " (clean)")
    )
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    for r in table:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    print()
    for row in report["rows"]:
        extra = f"  errors by kind: {row['error_kinds']}" if row["error_kinds"] else ""
        print(
            f"{row['label']}: rounds {row['rps_rounds']} req/s, max {row['max_ms']:.1f} ms, "
            f"status check {row['check_statuses']} (expected {row['expected_status']}){extra}"
        )
    sessions = report["emulator_sessions"]
    print(
        f"Stripe sessions: {sessions['after_first_press']} after the first presses, "
        f"{sessions['after_benchmark']} after the benchmark (POST reuse must create none); "
        f"first press {report['first_post_ms_mean']:.1f} ms each on average"
    )
    if not report["gateway_alive"]:
        print("GATEWAY DIED during the benchmark")
    if report["gateway_log"]:
        print("gateway log (WARNING and above), most frequent:")
        for message, count in report["gateway_log"].items():
            print(f"  {count:6d}  {message}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, interleaved by target")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds per target, untimed")
    parser.add_argument(
        "--check", type=float, default=3.0, help="seconds of the per-status check (0: skip)"
    )
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--links", type=int, default=200, help="distinct links to walk")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration <= 0 or args.links < 1:
        parser.error("--rounds, --duration and --links must be positive")
    return args


def _raise_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    tmp = Path(tempfile.mkdtemp(prefix="bench-pay-"))
    procs = Processes(tmp)
    try:
        report = run_bench(args, tmp, procs)
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        for child in procs.children:
            print(f"--- {child.name} log ({child.log}) ---\n{child.log_tail()}", file=sys.stderr)
        return 1
    finally:
        procs.stop_all()
        if args.keep:
            print(f"bench: kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
