"""Every figure of docs/design.md §8 in one run and one table (issue 6).

Run by hand, not by the test suite, holding the machine's benchmark lock::

    flock /tmp/bench.lock .venv/bin/python bench/run.py            # everything, ~6.5 minutes
    flock /tmp/bench.lock .venv/bin/python bench/run.py --only webhooks --duration 3 --rounds 1

Sections (``--only`` takes a comma-separated subset):

- ``pay``       SQLite, one gateway: bare aiohttp hello, human GET, POST reuse, bot preview,
                invalid token (bench/pay.py's rows);
- ``webhooks``  SQLite, same gateway, interleaved with the rows above: signed, distinct Stripe
                events POSTed to /stripe/webhook (bench/webhooks.py), then the inbox checked;
                two rows: copies that change nothing (``unchanged``), and the first delivery of
                each real event of fresh sessions (``applied``), the orders checked too;
- ``classify``  visitor classification per call, cold and cached (bench/classify.py);
- ``scaleout``  PostgreSQL, two gateways: human GET and POST reuse with two wrk at once, and
                200 simultaneous confirms of one fresh link (bench/scaleout.py);
- ``memory``    a sustained mixed load (``--memory-duration``, 60 s) on the SQLite gateway and,
                with ``scaleout``, on both PostgreSQL gateways, RSS sampled (bench/memory.py);
- ``scale``     SQLite, a fresh gateway: human GET spread over each of ``--scale-links``
                (10,000 and 100,000) links, interleaved with the bare handler, after every link
                was opened once; then the mixed load over all of them, RSS sampled
                (``--scale-memory-duration``; bench/scale.py);
- ``admin``     the admin API at ``--admin-links`` (100,000) links on SQLite and on PostgreSQL
                (``--admin-postgres``): every list call (first and deep pages, each status,
                ref prefixes, a date range) under 50 ms, and one bulk call of
                ``--admin-bulk-rows`` rows (bench/admin_scale.py, in this process, ~2 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import platform
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import admin_scale  # bench/ is not a package: these are found through sys.path above
import classify
import memory
import pay
import report as table
import scale
import scaleout
import webhooks
from _support import (
    Child,
    Load,
    Processes,
    WrkResult,
    free_port,
    median,
    require_wrk,
    run_checked,
    run_loads,
    wait_http,
    wrk_script,
)

BENCH_DIR = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
GATEWAY = str(VENV_BIN / "gateway")
SECTIONS = ("pay", "webhooks", "classify", "scaleout", "memory", "scale", "admin")
API_KEY = "sk_test_bench"

SPECS: dict[str, table.Spec] = {
    "hello": table.Spec("bare aiohttp hello", 200),
    "get": table.Spec("human GET /pay", 200, min_ratio=0.30, max_p99_ms=15.0),
    "post": table.Spec("POST reuse", 303, min_ratio=0.15),
    "bot": table.Spec("bot preview GET", 200, min_ratio=0.40),
    "invalid": table.Spec("invalid token GET", 404, min_ratio=0.40),
    "webhook": table.Spec("webhook deliveries (events/s)", 200, min_rps=1000.0),
    "webhook_first": table.Spec("webhook first deliveries (events/s)", 200, min_rps=1000.0),
    "pg_get": table.Spec("2xPG human GET /pay", 200),
    "pg_post": table.Spec("2xPG POST reuse", 303),
}


@dataclass
class Row:
    """One row of timed runs: a fixed script, or one made fresh for each run (webhooks)."""

    key: str
    loads: list[Load]
    check_scripts: list[Path] = field(default_factory=list)
    fresh_script: Callable[[str, float], Path] | None = None
    after_run: Callable[[list[WrkResult]], None] | None = None
    warmup: bool = True  # False: no untimed run before the rounds
    duration: float | None = None  # wrk's -d for the timed runs, instead of --duration
    connections: int | None = None  # instead of --connections
    runs: table.Runs = field(init=False)

    def __post_init__(self) -> None:
        self.runs = table.Runs(SPECS[self.key])


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path, procs: Processes) -> None:
        self.args = args
        self.tmp = tmp
        self.procs = procs
        self.only = set(args.only)
        self.secret = "whsec_bench_" + secrets.token_hex(8)
        self.emulator_port = free_port()
        self.emulator = f"http://127.0.0.1:{self.emulator_port}"
        self.report: dict[str, Any] = {"logs": {}, "died": [], "memory": []}
        self.bare_rps: float | None = None

    def log(self, *parts: object) -> None:
        if not self.args.quiet:
            print("bench:", *parts, file=sys.stderr, flush=True)

    # --- processes ------------------------------------------------------------------------------

    def start_emulator(self) -> Child:
        """No ``--webhook-url``: the emulator only logs its events; the benchmark sends them."""
        argv = [GATEWAY, "emulator", "--port", str(self.emulator_port)]
        argv += ["--webhook-secret", self.secret]
        child = self.procs.start("emulator", argv, os.environ, cwd=self.tmp)
        wait_http(f"{self.emulator}/_emulator/state", child)
        return child

    def start_gateway(self, name: str, env: dict[str, str], cwd: Path) -> Child:
        child = self.procs.start(name, [GATEWAY, "serve"], env, cwd=cwd)
        wait_http(f"http://127.0.0.1:{env['GATEWAY_SERVER_PORT']}/healthz", child)
        self.log(f"{name} is pid {child.pid}, log {child.log}")
        return child

    def finish(self, *children: Child) -> None:
        for child in children:
            self.report["logs"][child.name] = pay.gateway_log_summary(child)
            if not child.alive():
                self.report["died"].append(child.name)
            self.procs.stop(child)

    # --- timed rounds ---------------------------------------------------------------------------

    def drive(
        self, row: Row, duration: float, name: str, scripts: list[Path] | None = None
    ) -> list[WrkResult]:
        if scripts is None and row.fresh_script is not None:
            scripts = [row.fresh_script(name, duration)]
        loads = [
            Load(load.url, script, load.child)
            for load, script in zip(
                row.loads, scripts or [ld.script for ld in row.loads], strict=True
            )
        ]
        per_process = max(1, (row.connections or self.args.connections) // len(loads))
        threads = self.args.threads if len(loads) == 1 else 1
        results = [
            r
            for r, _ in run_loads(
                loads, duration=duration, threads=threads, connections=per_process
            )
        ]
        if row.after_run is not None:
            row.after_run(results)
        return results

    def rounds(self, rows: list[Row], rounds: int) -> None:
        """Warm-up, then ``rounds`` rounds with the rows interleaved, then the status check."""
        a = self.args
        if a.warmup > 0:
            for row in rows:
                if row.warmup:
                    self.log(f"warm-up {row.key} {a.warmup:g}s")
                    self.drive(row, a.warmup, "w")
        for n in range(1, rounds + 1):
            for row in rows:
                results = self.drive(row, row.duration or a.duration, f"r{n}")
                row.runs.rounds.append(results)
                self.log(
                    f"round {n}/{rounds} {row.key:8} {sum(r.rps for r in results):9.0f} req/s  "
                    f"p99 {max(r.p99_ms for r in results):7.2f} ms  "
                    f"errors {sum(r.error_total for r in results)}  "
                    f"rss {' / '.join(f'{r.rss_peak_mb:.1f}' for r in results)} MB"
                )
        if a.check > 0:
            for row in rows:
                if row.check_scripts:
                    row.runs.check = self.drive(row, a.check, "c", row.check_scripts)
                    self.log(f"status check {row.key}: {[r.statuses for r in row.runs.check]}")

    # --- SQLite ---------------------------------------------------------------------------------

    def sqlite_phase(self) -> None:
        a = self.args
        want_pay = bool(self.only & {"pay", "memory"})
        want_hooks = "webhooks" in self.only
        tmp = self.tmp / "sqlite"
        tmp.mkdir()
        hello_port, port = free_port(), free_port()
        env = pay.gateway_env(tmp, port, self.emulator_port, self.secret)
        # The benchmark delivers the emulator's events itself: a reconcile pass (first one five
        # minutes after start) would replay them behind its back, applying the first deliveries
        # before they are timed.
        env["GATEWAY_RECONCILE_INTERVAL"] = "1d"
        base = f"http://127.0.0.1:{port}"
        argv = [sys.executable, str(BENCH_DIR / "hello.py"), str(hello_port)]
        hello = self.procs.start("hello", argv, env)
        run_checked([GATEWAY, "db", "upgrade"], env, cwd=tmp)
        gateway = self.start_gateway("gateway-sqlite", env, tmp)
        wait_http(f"http://127.0.0.1:{hello_port}/healthz", hello)

        n_pay = a.links if want_pay else 0
        n_hooks = a.webhook_links if want_hooks else 0
        n_first = a.webhook_apply_links * a.rounds if want_hooks else 0
        self.log(f"issuing {n_pay} + {n_hooks} + {n_first} links")
        links = asyncio.run(pay.issue_link_records(env, n_pay + n_hooks + n_first))
        tokens = [token for _, token in links]
        pay_tokens = tokens[:n_pay]
        hook_tokens = tokens[n_pay : n_pay + n_hooks]
        first_tokens = tokens[n_pay + n_hooks :]
        sqlite: dict[str, Any] = {}
        self.report["sqlite"] = sqlite
        scripts = pay.write_scripts(tmp, pay_tokens or tokens[:1])
        if want_pay:
            self.log("checking the pages and pressing Pay once on each link")
            facts = asyncio.run(pay.prepare_links(base, self.emulator, pay_tokens))

        def fixed(key: str, url: str, child: Child) -> Row:
            timed, check = scripts[key]
            return Row(key, [Load(url, timed, child)], [check])

        rows = [fixed("hello", f"http://127.0.0.1:{hello_port}", hello)]
        if "pay" in self.only:
            rows += [fixed(k, base, gateway) for k in ("get", "post", "bot", "invalid")]
        if want_hooks:
            rows.append(self.webhook_row(tmp, base, gateway, hook_tokens, sqlite))
            rows.append(self.first_delivery_row(tmp, base, gateway, first_tokens, sqlite))
        self.rounds(rows, a.rounds)
        self.bare_rps = median([sum(r.rps for r in procs) for procs in rows[0].runs.rounds])
        sqlite["rows"] = [table.http_row(row.runs, self.bare_rps) for row in rows]
        by_key = dict(zip((row.key for row in rows), sqlite["rows"], strict=True))
        if want_hooks:
            db_path = tmp / "bench.sqlite3"
            deliveries = sqlite.pop("_deliveries")
            hook_runs = next(row for row in rows if row.key == "webhook").runs.rounds
            checks = [
                webhooks.check_inbox(db_path, d, res[0])
                for d, res in zip(deliveries, hook_runs, strict=True)
            ]
            sqlite["webhooks"]["runs"] = [dict(c.__dict__, ok=c.ok) for c in checks]
            if not all(c.ok for c in checks):
                by_key["webhook"]["met"] = False
            first_runs = sqlite.pop("_first_runs")
            first_rounds = next(row for row in rows if row.key == "webhook_first").runs.rounds
            first_checks = [
                webhooks.check_first(db_path, run, res[0])
                for run, res in zip(first_runs, first_rounds, strict=True)
            ]
            sqlite["webhooks"]["first_runs"] = [
                dict(
                    c.__dict__,
                    ok=c.ok,
                    types=run.batch.types(),
                    per_thread=run.per_thread,
                    span_s=res[0].duration_s,
                    wrk_s=res[0].extra.get("wrk_duration_s"),
                    client_outcomes=res[0].extra.get("outcomes"),
                    threads=res[0].extra.get("threads"),
                )
                for c, run, res in zip(first_checks, first_runs, first_rounds, strict=True)
            ]
            if not all(c.ok for c in first_checks):
                by_key["webhook_first"]["met"] = False
        if want_pay:
            sqlite["emulator_sessions"] = {
                "after_first_press": facts["sessions_after_prepare"],
                "after_benchmark": len(self.link_sessions({i for i, _ in links[:n_pay]})),
            }
        self.finish(hello)
        if "memory" in self.only:
            path = memory.write_mix(tmp / "mix.lua", mix_groups(pay_tokens))
            self.memory_run("SQLite, 1 process", [Load(base, path, gateway)])
        self.finish(gateway)

    def webhook_row(
        self, tmp: Path, base: str, gateway: Child, tokens: list[str], sqlite: dict[str, Any]
    ) -> Row:
        self.log(f"webhooks: paying, settling, refunding and expiring {len(tokens)} sessions")
        templates = asyncio.run(webhooks.make_templates(base, self.emulator, API_KEY, tokens))
        sizes = [len(json.dumps(t, indent=2)) for t in templates]
        sqlite["webhooks"] = {
            "links": len(tokens),
            "templates": len(templates),
            "template_types": dict(Counter(t["type"] for t in templates)),
            "body_bytes": round(sum(sizes) / len(sizes)),
        }
        run_id = secrets.token_hex(3)
        self.log(f"webhooks: first delivery of each of the {len(templates)} events, in order")
        primed = asyncio.run(
            webhooks.prime(base, templates, prefix=f"evt_bench{run_id}_p_", secret=self.secret)
        )
        sqlite["webhooks"]["first_delivery"] = primed
        if set(primed["statuses"]) != {200}:
            raise RuntimeError(f"webhooks: first deliveries answered {primed['statuses']}")
        deliveries: list[webhooks.Deliveries] = []
        sqlite["_deliveries"] = deliveries
        rate = [self.args.webhook_rate_guess]

        def fresh(name: str, duration: float) -> Path:
            # Enough distinct events for the fastest rate seen so far, twice over.
            count = max(2000, math.ceil(rate[0] * duration * 2) + self.args.connections)
            d = webhooks.write_deliveries(
                tmp / f"webhooks-{name}.lua",
                templates,
                prefix=f"evt_bench{run_id}_{name}_",
                count=count,
                secret=self.secret,
                threads=self.args.threads,
            )
            if name.startswith("r"):
                deliveries.append(d)
            return d.script

        def learn(results: list[WrkResult]) -> None:
            rate[0] = max(rate[0], results[0].rps)
            if not self.args.keep:  # wrk has read it; a fast gateway makes this file large
                for data in tmp.glob("webhooks-*.events"):
                    data.unlink()

        return Row(
            "webhook",
            [Load(base, tmp / "webhooks.lua", gateway)],
            fresh_script=fresh,
            after_run=learn,
        )

    def first_delivery_row(
        self, tmp: Path, base: str, gateway: Child, tokens: list[str], sqlite: dict[str, Any]
    ) -> Row:
        """Every timed event is the first delivery of a real transition (outcome ``applied``):
        a fresh batch of ``--webhook-apply-links`` sessions per round, moved on in the emulator
        beforehand, their events sent only in that round's wrk run."""
        a = self.args
        per_round = a.webhook_apply_links
        batches = []
        for n in range(a.rounds):
            self.log(f"webhooks, first deliveries: {per_round} more sessions for round {n + 1}")
            batches.append(
                asyncio.run(
                    webhooks.make_first_batch(
                        base,
                        self.emulator,
                        API_KEY,
                        tokens[n * per_round : (n + 1) * per_round],
                        label=f"r{n + 1}",
                    )
                )
            )
        events = min(b.events for b in batches)
        # At least ~20 events per connection, or the run is mostly ramp-up and drain.
        connections = max(a.threads, min(a.connections, events // 20))
        runs: list[webhooks.FirstRun] = []
        sqlite["_first_runs"] = runs
        sqlite["webhooks"]["first"] = {
            "links_per_round": per_round,
            "events_per_round": [b.events for b in batches],
            "connections": connections,
        }

        def fresh(name: str, duration: float) -> Path:
            del duration
            # Signed now, so the 5-minute tolerance holds; each batch is sent once.
            run = webhooks.write_first_deliveries(
                tmp / f"webhooks-first-{name}.lua",
                batches[int(name[1:]) - 1],
                secret=self.secret,
                threads=a.threads,
            )
            runs.append(run)
            return run.script

        def rate_from_span(results: list[WrkResult]) -> None:
            # Events over the time from the first request written to the last answer read.
            for r in results:
                r.extra["wrk_duration_s"] = r.duration_s
                span = r.extra.get("span_us", 0) / 1e6
                if span > 0:
                    r.duration_s = span
            if not a.keep:
                for data in tmp.glob("webhooks-first-*.events"):
                    data.unlink()

        return Row(
            "webhook_first",
            [Load(base, tmp / "webhooks-first.lua", gateway)],
            fresh_script=fresh,
            after_run=rate_from_span,
            warmup=False,
            # Only a ceiling: the script ends the run when its events run out.
            duration=float(max(math.ceil(a.duration), math.ceil(events / 50) + 5)),
            connections=connections,
        )

    def link_sessions(self, link_ids: set[str]) -> list[str]:
        """The emulator's sessions for these links."""
        import urllib.request

        with urllib.request.urlopen(f"{self.emulator}/_emulator/sessions", timeout=30) as resp:  # noqa: S310
            data = json.load(resp)["data"]
        return [s["id"] for s in data if (s.get("metadata") or {}).get("link_id") in link_ids]

    # --- PostgreSQL, two processes --------------------------------------------------------------

    def pg_phase(self) -> None:
        a = self.args
        db = scaleout.PgDatabase()
        db.create()
        tmp = self.tmp / "pg"
        tmp.mkdir()
        try:
            ports = [free_port(), free_port()]
            env = pay.gateway_env(tmp, ports[0], self.emulator_port, self.secret)
            env["GATEWAY_DATABASE_URL"] = db.url
            envs = [env, dict(env)]
            envs[1]["GATEWAY_SERVER_PORT"] = str(ports[1])
            envs[1]["GATEWAY_SERVER_PUBLIC_URL"] = f"http://127.0.0.1:{ports[1]}"
            run_checked([GATEWAY, "db", "upgrade"], env, cwd=tmp)
            gateways = [
                self.start_gateway(f"gateway-pg{i + 1}", e, tmp) for i, e in enumerate(envs)
            ]
            bases = [f"http://127.0.0.1:{p}" for p in ports]
            self.log(f"PostgreSQL {db.name}: issuing {a.links} links")
            tokens = asyncio.run(pay.issue_links(env, a.links))
            asyncio.run(pay.prepare_links(bases[0], self.emulator, tokens))
            scripts = pay.write_scripts(tmp, tokens)
            rows = [
                Row(
                    f"pg_{k}",
                    [Load(b, scripts[k][0], g) for b, g in zip(bases, gateways, strict=True)],
                    [scripts[k][1]] * 2,
                )
                for k in ("get", "post")
            ]
            pg: dict[str, Any] = {}
            self.report["postgres"] = pg
            self.rounds(rows, a.pg_rounds)
            pg["rows"] = [table.http_row(row.runs, self.bare_rps) for row in rows]

            ((link_id, token),) = asyncio.run(pay.issue_link_records(env, 1))
            self.log(f"confirm race: {a.confirms} simultaneous POSTs of one fresh link")
            race = asyncio.run(
                scaleout.confirm_race(ports, token, link_id, self.emulator, a.confirms)
            )
            pg["race"] = race.as_dict()
            self.log(f"confirm race: {pg['race']}")
            if "memory" in self.only:
                path = memory.write_mix(tmp / "mix.lua", mix_groups(tokens))
                loads = [Load(b, path, g) for b, g in zip(bases, gateways, strict=True)]
                self.memory_run("PostgreSQL, 2 processes", loads)
            self.finish(*gateways)
        finally:
            for child in list(self.procs.children):
                if child.name.startswith("gateway-pg"):
                    self.procs.stop(child)
            db.drop()

    # --- scale: GET spread over many links --------------------------------------------------------

    def scale_phase(self) -> None:
        a = self.args
        tmp = self.tmp / "scale"
        tmp.mkdir()
        hello_port, port = free_port(), free_port()
        env = pay.gateway_env(tmp, port, self.emulator_port, self.secret)
        env["GATEWAY_RECONCILE_INTERVAL"] = "1d"
        base = f"http://127.0.0.1:{port}"
        argv = [sys.executable, str(BENCH_DIR / "hello.py"), str(hello_port)]
        hello = self.procs.start("hello-scale", argv, env)
        run_checked([GATEWAY, "db", "upgrade"], env, cwd=tmp)
        gateway = self.start_gateway("gateway-scale", env, tmp)
        wait_http(f"http://127.0.0.1:{hello_port}/healthz", hello)
        out: dict[str, Any] = {"runs": []}
        self.report["scale"] = out
        tokens: list[str] = []
        for n in sorted(a.scale_links):
            started = time.perf_counter()
            tokens += asyncio.run(scale.issue(env, n - len(tokens), start=len(tokens)))
            issued_s = time.perf_counter() - started
            self.log(f"scale: {n} links issued ({issued_s:.0f} s); opening each once")
            timed, check = scale.write_scripts(tmp, f"get-{n}", tokens[:n])
            warm = asyncio.run(scale.open_each(base, tokens[:n]))
            self.log(f"scale: opened {n} links in {warm['seconds']} s: {warm['statuses']}")
            if set(warm["statuses"]) != {200}:
                raise RuntimeError(f"scale: opening {n} links answered {warm['statuses']}")
            key = f"scale_get_{n}"
            SPECS[key] = table.Spec(
                f"human GET /pay over {n:,} links",
                200,
                min_ratio=scale.TARGETS.get(n),  # §8 gives these rows no p99 (shown, not held)
            )
            hello_lua, hello_check = tmp / "hello.lua", tmp / "hello-check.lua"
            hello_lua.write_text(wrk_script(paths=["/"]))
            hello_check.write_text(wrk_script(paths=["/"], count_statuses=True))
            hello_url = f"http://127.0.0.1:{hello_port}"
            rows = [
                Row("hello", [Load(hello_url, hello_lua, hello)], [hello_check]),
                Row(key, [Load(base, timed, gateway)], [check]),
            ]
            self.rounds(rows, a.rounds)
            bare = median([sum(r.rps for r in procs) for procs in rows[0].runs.rounds])
            out["runs"].append(
                {
                    "links": n,
                    "issued_s": round(issued_s, 1),
                    "opened": warm,
                    "rows": [table.http_row(row.runs, bare) for row in rows],
                }
            )
        self.finish(hello)
        if a.scale_memory_duration > 0:
            # POST reuse needs a session per link: Pay is pressed on the first 1,000 only (a
            # POST reads the database, not the caches this run is about).
            pressed = tokens[: min(len(tokens), 1000)]
            self.log(f"scale: pressing Pay once on {len(pressed)} links for the mixed load")
            asyncio.run(pay.prepare_links(base, self.emulator, pressed))
            path = memory.write_mix(
                tmp / "mix.lua",
                mix_groups(tokens, paths_dir=tmp, pressed=pressed),
                requests=math.ceil(len(tokens) * 10 / 6) + 10,
            )
            self.memory_run(
                f"SQLite, 1 process, {len(tokens):,} links",
                [Load(base, path, gateway)],
                duration=a.scale_memory_duration,
            )
        self.finish(gateway)

    # --- memory ---------------------------------------------------------------------------------

    def memory_run(self, label: str, loads: list[Load], duration: float | None = None) -> None:
        a = self.args
        duration = duration or a.memory_duration
        self.log(f"memory: {label}, {duration:g}s of mixed load")
        per = max(1, a.connections // len(loads))
        threads = a.threads if len(loads) == 1 else 1
        results, verdicts = memory.run(loads, duration=duration, threads=threads, connections=per)
        statuses: Counter[int] = Counter()
        for r in results:
            statuses.update(r.statuses)
        errors = sum(r.errors[k] for r in results for k in ("connect", "read", "write", "timeout"))
        errors += sum(n for code, n in statuses.items() if code not in (200, 303, 404))
        for result, v in zip(results, verdicts, strict=True):
            v["rps"] = result.rps
        self.report["memory"].append(
            {
                "label": label,
                "duration_s": duration,
                "errors": errors,
                "statuses": dict(statuses),
                "processes": verdicts,
                "flat_mb": memory.FLAT_MB,
                "limit_mb": memory.LIMIT_MB,
            }
        )
        self.log(f"memory {label}: {verdicts}")

    def admin_phase(self) -> None:
        a = self.args
        where = " and PostgreSQL" if a.admin_postgres else ""
        self.log(f"admin: {a.admin_links:,} links on SQLite{where}")
        rows = admin_scale.run(
            links=a.admin_links,
            bulk_rows=a.admin_bulk_rows,
            rounds=a.admin_rounds,
            postgres_url=a.admin_postgres or None,
        )
        self.report["admin"] = {"rows": [list(row) for row in rows]}

    # --- all ------------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        if self.only - {"classify", "admin"}:
            require_wrk()
        code = pay.code_under_test()  # before the run: others may commit while it runs
        if "classify" in self.only:
            self.log("classification")
            self.report["classify"] = classify.measure(self.args.classify_size)
        if self.only & {"pay", "webhooks", "memory", "scaleout", "scale"}:
            self.start_emulator()
        if self.only & {"pay", "webhooks", "memory"}:
            self.sqlite_phase()
        if "scaleout" in self.only:
            self.pg_phase()
        if "scale" in self.only:
            self.scale_phase()
        if "admin" in self.only:
            self.admin_phase()
        a = self.args
        self.report.update(
            {
                "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "settings": {
                    "sections": sorted(self.only),
                    "duration_s": a.duration,
                    "rounds": a.rounds,
                    "pg_rounds": a.pg_rounds,
                    "warmup_s": a.warmup,
                    "check_s": a.check,
                    "threads": a.threads,
                    "connections": a.connections,
                    "links": a.links,
                    "webhook_links": a.webhook_links,
                    "webhook_apply_links": a.webhook_apply_links,
                    "memory_duration_s": a.memory_duration,
                    "scale_links": a.scale_links,
                    "scale_memory_duration_s": a.scale_memory_duration,
                    "admin_links": a.admin_links,
                    "admin_bulk_rows": a.admin_bulk_rows,
                    "admin_rounds": a.admin_rounds,
                },
                "code": code,
            }
        )
        return self.report


def mix_groups(
    tokens: list[str], paths_dir: Path | None = None, pressed: list[str] | None = None
) -> list[memory.Group]:
    """The mixed load's groups. With ``paths_dir`` (many links) the paths are written to files
    there, and POSTs go to the ``pressed`` links only (each needs a session to reuse)."""
    paths = [f"/pay/{t}" for t in tokens]
    forged = [f"/pay/{pay.forged(t)}" for t in tokens]
    posts = paths if pressed is None else [f"/pay/{t}" for t in pressed]
    own: Path | None = None
    bad: Path | None = None
    if paths_dir is not None:
        own, bad = paths_dir / "mix-paths.txt", paths_dir / "mix-forged.txt"
        own.write_text("".join(f"{p}\n" for p in paths))
        bad.write_text("".join(f"{p}\n" for p in forged))
        paths, forged = [], []
    agents = [(ua, lang) for _, ua, lang in pay.PHONE_AGENTS]
    accept = {"Accept": pay.BROWSER_ACCEPT}
    form = {**accept, "Content-Type": "application/x-www-form-urlencoded", "Origin": "null"}
    return [
        memory.Group(6, paths, agents, headers=accept, paths_file=own),
        memory.Group(2, posts, agents, method="POST", headers=form, body=""),
        memory.Group(1, paths, pay.BOT_AGENTS, paths_file=own),
        memory.Group(1, forged, agents, headers=accept, paths_file=bad),
    ]


def _counts(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    add("--duration", type=float, default=8.0, help="seconds per timed wrk run")
    add("--rounds", type=int, default=3, help="rounds on SQLite, rows interleaved")
    add("--pg-rounds", type=int, default=2, help="rounds on PostgreSQL")
    add("--warmup", type=float, default=2.0, help="seconds per row, untimed")
    add("--check", type=float, default=2.0, help="seconds of the per-status check (0: skip)")
    add("--threads", type=int, default=2, help="wrk threads (one wrk per process: -t1)")
    add("--connections", type=int, default=64, help="wrk connections (split between processes)")
    add("--links", type=int, default=200, help="distinct links for the payer rows")
    add("--webhook-links", type=int, default=200, help="links whose sessions the events name")
    add(
        "--webhook-apply-links",
        type=int,
        default=1500,
        help="links per round whose events are delivered for the first time, timed",
    )
    add("--webhook-rate-guess", type=float, default=2000.0, help="events/s to size the first run")
    add("--confirms", type=int, default=200, help="simultaneous confirms in the race")
    add("--memory-duration", type=float, default=60.0, help="seconds of the memory run")
    add("--classify-size", type=int, default=2000, help="user agents in the classification mix")
    add(
        "--scale-links",
        type=_counts,
        default=[10_000, 100_000],
        help="comma-separated link counts for the scale rows (10000,100000)",
    )
    add(
        "--scale-memory-duration",
        type=float,
        default=60.0,
        help="seconds of mixed load over all the scale links, RSS sampled (0: skip)",
    )
    add("--admin-links", type=int, default=100_000, help="links seeded for the admin rows")
    add("--admin-bulk-rows", type=int, default=100_000, help="rows of the admin bulk call")
    add("--admin-rounds", type=int, default=7, help="timed calls per admin list variant")
    add(
        "--admin-postgres",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="PostgreSQL admin URL for the admin rows ('': SQLite only)",
    )
    add("--json", action="store_true", help="print the report as JSON")
    add("--keep", action="store_true", help="keep the temporary directory")
    add("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.only) - set(SECTIONS)
    if unknown:
        parser.error(f"--only: unknown {sorted(unknown)}; choose from {SECTIONS}")
    if min(args.rounds, args.pg_rounds, args.links, args.webhook_apply_links) < 1:
        parser.error("--rounds, --pg-rounds, --links and --webhook-apply-links must be positive")
    if min(args.admin_links, args.admin_bulk_rows, args.admin_rounds) < 1:
        parser.error("--admin-links, --admin-bulk-rows and --admin-rounds must be positive")
    if args.duration <= 0:
        parser.error("--duration must be positive")
    return args


def _raise_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    tmp = Path(tempfile.mkdtemp(prefix="bench-run-"))
    procs = Processes(tmp)
    try:
        result = Bench(args, tmp, procs).run()
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
    print(json.dumps(result, indent=2, default=str) if args.json else table.render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
