"""Rows of bench/run.py's table, and the table itself (one block, a section per setting)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from _support import WrkResult, median


@dataclass
class Spec:
    """What a row must answer, and the docs/design.md §8 target it is held to (if any)."""

    label: str
    expect: int
    min_ratio: float | None = None
    max_p99_ms: float | None = None
    min_rps: float | None = None  # absolute (webhooks: events/s)

    def target_text(self) -> str:
        parts = []
        if self.min_ratio is not None:
            parts.append(f">= {self.min_ratio:.0%}")
        if self.min_rps is not None:
            parts.append(f">= {self.min_rps:,.0f}/s")
        if self.max_p99_ms is not None:
            parts.append(f"p99 < {self.max_p99_ms:g} ms")
        return ", ".join(parts) or "-"


@dataclass
class Runs:
    """Every timed wrk run of one row (for two processes: one list per process, same order)."""

    spec: Spec
    rounds: list[list[WrkResult]] = field(default_factory=list)  # [round][process]
    check: list[WrkResult] = field(default_factory=list)  # the status check, per process


def http_row(runs: Runs, base_rps: float | None) -> dict[str, Any]:
    """Requests/s: median over rounds of the sum over processes. p50/p99: median over rounds of
    the worst process. Errors: wrk's socket errors and timeouts plus every response that is not
    the expected status (from the status check, or the timed rounds when they counted)."""
    spec = runs.spec
    per_round = [sum(r.rps for r in procs) for procs in runs.rounds]
    rps = median(per_round)
    errors: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    for procs in runs.rounds:
        for r in procs:
            errors.update(r.errors)
            statuses.update(r.statuses)
    for r in runs.check:
        statuses.update(r.statuses)
    if spec.expect >= 400:
        errors.pop("status", None)  # wrk counts every 4xx as an error; here it is the answer
    unexpected = {code: n for code, n in statuses.items() if code != spec.expect}
    nproc = len(runs.rounds[0]) if runs.rounds else 0
    rss = [max(procs[i].rss_peak_mb for procs in runs.rounds) for i in range(nproc)]
    row: dict[str, Any] = {
        "label": spec.label,
        "rps": rps,
        "rps_rounds": [round(x, 1) for x in per_round],
        "p50_ms": median([max(r.p50_ms for r in procs) for procs in runs.rounds]),
        "p99_ms": median([max(r.p99_ms for r in procs) for procs in runs.rounds]),
        "max_ms": max(r.max_ms for procs in runs.rounds for r in procs),
        "requests": sum(r.requests for procs in runs.rounds for r in procs),
        "errors": sum(v for v in errors.values() if v),
        "error_kinds": {k: v for k, v in errors.items() if v},
        "expected_status": spec.expect,
        "statuses": dict(statuses),
        "unexpected_statuses": unexpected,
        "rss_mb": rss,
        "ratio": rps / base_rps if base_rps else None,
        "target": spec.target_text(),
    }
    met: bool | None = None
    if spec.min_ratio is not None or spec.min_rps is not None:
        met = row["errors"] == 0 and not unexpected
        if spec.min_ratio is not None:
            met = met and row["ratio"] is not None and row["ratio"] >= spec.min_ratio
        if spec.min_rps is not None:
            met = met and rps >= spec.min_rps
        if spec.max_p99_ms is not None:
            met = met and row["p99_ms"] < spec.max_p99_ms
    row["met"] = met
    return row


def _yes(value: bool | None) -> str:
    return {True: "yes", False: "NO", None: "-"}[value]


def _section(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    out = [f"== {title}"]
    out.append("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    out.append("  ".join("-" * w for w in widths))
    for r in rows:
        out.append("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return out


HTTP_HEADERS = ["row", "req/s", "p50 ms", "p99 ms", "errors", "RSS MB", "ratio", "target", "met"]


def _http_cells(row: dict[str, Any]) -> list[str]:
    errors = str(row["errors"])
    if row["unexpected_statuses"]:
        errors += " +" + ",".join(f"{c}x{n}" for c, n in row["unexpected_statuses"].items())
    ratio = row["ratio"]
    return [
        row["label"],
        f"{row['rps']:.0f}",
        f"{row['p50_ms']:.2f}",
        f"{row['p99_ms']:.2f}",
        errors,
        " / ".join(f"{x:.1f}" for x in row["rss_mb"]),
        "-" if ratio is None else f"{ratio:.1%}",
        row["target"],
        _yes(row["met"]),
    ]


def render(report: dict[str, Any]) -> str:
    """The one table: a section per setting, then the details each row needs."""
    lines: list[str] = []
    s = report["settings"]
    code = report["code"]
    dirty = code["uncommitted_gateway_files"]
    lines.append(
        f"{report['date']}  {report['machine']['cpus']} cpus  python {report['machine']['python']}"
        f"  wrk -t{s['threads']} -c{s['connections']} -d{s['duration_s']:g}s x {s['rounds']} "
        f"rounds ({s['pg_rounds']} on PostgreSQL), {s['links']} links"
    )
    lines.append(
        f"gateway at {code['commit']}"
        + (f" plus uncommitted changes to {', '.join(dirty)}" if dirty else " (clean)")
    )
    sqlite_rows = report.get("sqlite", {}).get("rows", [])
    if sqlite_rows:
        lines += _section(
            "SQLite, one gateway process (ratio: to bare aiohttp in this run)",
            HTTP_HEADERS,
            [_http_cells(r) for r in sqlite_rows],
        )
    pg = report.get("postgres", {})
    if pg.get("rows"):
        lines += _section(
            "PostgreSQL, two gateway processes, two wrk at once (-t1, half the connections "
            "each), summed; p50/p99 the worse process; RSS per process",
            HTTP_HEADERS,
            [_http_cells(r) for r in pg["rows"]],
        )
    race = pg.get("race")
    if race:
        lines += _section(
            "Concurrency: simultaneous confirms of one fresh link, alternating between the two "
            "processes",
            ["row", "confirms", "answers", "5xx", "Stripe sessions", "target", "met"],
            [
                [
                    "200 confirms, 2 processes, PostgreSQL",
                    str(race["confirms"]),
                    ",".join(f"{c}x{n}" for c, n in sorted(race["statuses"].items()))
                    + (f" failed {race['failures']}" if race["failures"] else ""),
                    str(sum(n for c, n in race["statuses"].items() if c >= 500)),
                    str(len(race["emulator_sessions_for_link"])),
                    "1 session, 0 5xx",
                    "PASS" if race["ok"] else "FAIL",
                ]
            ],
        )
    for run in report.get("scale", {}).get("runs", []):
        lines += _section(
            f"Scale: human GET spread over {run['links']:,} links, every one opened before "
            "(SQLite, one gateway; ratio: to bare aiohttp in the same rounds)",
            HTTP_HEADERS,
            [_http_cells(r) for r in run["rows"]],
        )
    admin = report.get("admin")
    if admin:
        lines += _section(
            f"Admin API at {s['admin_links']:,} links: list calls over HTTP, median and slowest "
            f"of {s['admin_rounds']} after a warm-up; one bulk call (bench/admin_scale.py)",
            ["row", "result", "target", "met"],
            [[row, result, target, _yes(met)] for row, result, target, met in admin["rows"]],
        )
    cls = report.get("classify")
    if cls:
        rows = []
        for label, key, limit in (("cold", "cold", 30.0), ("cached", "cached", 2.0)):
            m = cls[key]
            rows.append(
                [
                    f"classification, {label}",
                    f"{m['median_us']:.2f}",
                    f"{m['p99_us']:.2f}",
                    str(m["n"]),
                    f"<= {limit:g} µs",
                    _yes(m["median_us"] <= limit),
                ]
            )
        lines += _section(
            "Visitor classification per call (in the benchmark process, before any load)",
            ["row", "median µs", "p99 µs", "calls", "target", "met"],
            rows,
        )
    mem = report.get("memory", [])
    if mem:
        rows = []
        for m in mem:
            for i, v in enumerate(m["processes"]):
                rows.append(
                    [
                        m["label"] + (f" #{i + 1}" if len(m["processes"]) > 1 else ""),
                        f"{v['rps']:.0f}",
                        str(m["errors"]),
                        f"{v['start_mb']:.1f}",
                        f"{v['mid_mb']:.1f}",
                        f"{v['peak_mb']:.1f}",
                        f"{v['end_mb']:.1f}",
                        f"{v['growth_second_half_mb']:+.1f}",
                        f"{v['slope_mb_per_min']:+.2f}",
                        _yes(v["flat"]),
                        _yes(v["under_limit"]),
                    ]
                )
        d = mem[0]
        lines += _section(
            f"Memory under {d['duration_s']:g} s of mixed load (6 GET : 2 POST reuse : 1 bot : "
            f"1 invalid); flat = 2nd-half growth < {d['flat_mb']:g} MB",
            [
                "row",
                "req/s",
                "errors",
                "start MB",
                "mid MB",
                "peak MB",
                "end MB",
                "growth",
                "MB/min",
                "flat",
                f"< {d['limit_mb']:g} MB",
            ],
            rows,
        )
    lines.append("")
    lines += details(report)
    return "\n".join(lines)


def details(report: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for setting in ("sqlite", "postgres"):
        for row in report.get(setting, {}).get("rows", []):
            extra = f"  errors by kind: {row['error_kinds']}" if row["error_kinds"] else ""
            out.append(
                f"{row['label']}: rounds {row['rps_rounds']} req/s, max {row['max_ms']:.1f} ms, "
                f"statuses {row['statuses']} (expected {row['expected_status']}){extra}"
            )
    for run in report.get("scale", {}).get("runs", []):
        for row in run["rows"]:
            out.append(
                f"{row['label']} (scale, {run['links']:,} links): rounds {row['rps_rounds']} "
                f"req/s, max {row['max_ms']:.1f} ms, statuses {row['statuses']}"
            )
        out.append(
            f"  {run['links']:,} links: issued in {run['issued_s']:g} s (more over the previous "
            f"count), each opened once in {run['opened']['seconds']:g} s before the rounds, "
            f"{run['opened']['statuses']}"
        )
    hooks = report.get("sqlite", {}).get("webhooks")
    if hooks:
        out.append(
            f"webhooks: {hooks['templates']} event templates from {hooks['links']} links "
            f"({hooks['template_types']}); body {hooks['body_bytes']} bytes on average"
        )
        first = hooks["first_delivery"]
        out.append(
            f"  first delivery of each, in order, one at a time (before the warm-up): "
            f"{first['events']} events, {first['mean_ms']:.1f} ms each, statuses "
            f"{first['statuses']}, outcomes {first['outcomes']}"
        )
        for run in hooks["runs"]:
            out.append(
                f"  inbox {run['prefix']}*: {run['rows']} rows, {run['distinct_rows']} distinct, "
                f"for {run['answered_distinct']}..{run['sent_distinct']} distinct ids answered.."
                f"sent{' (a thread ran out and resent ids)' if run['wrapped'] else ''}; "
                f"outcomes {run['outcomes']} -> {'ok' if run['ok'] else 'WRONG'}"
            )
        first_setup = hooks.get("first")
        if first_setup:
            out.append(
                f"webhook first deliveries: {first_setup['links_per_round']} fresh links per "
                f"round, each session moved on in the emulator and none of its events sent "
                f"before its round; {first_setup['events_per_round']} events per round, each "
                f"sent once, a session's later event only after its earlier one was answered; "
                f"-c{first_setup['connections']}; rate = events / (first request .. last answer)"
            )
        for run in hooks.get("first_runs", []):
            per_thread = ", ".join(
                f"t{i + 1} {t[2]}/{t[0]} answered, {t[3]} skipped, {t[4]} idle waits"
                + (f", {t[5]} unmatched" if t[5] else "")
                for i, t in enumerate(run["threads"] or [])
            )
            out.append(
                f"  {run['label']}: {run['events']} events {run['types']} in {run['span_s']:.2f} s"
                f" (wrk ran {run['wrk_s']:.2f} s); answers {run['client_outcomes']}; "
                f"{per_thread}"
            )
            out.append(
                f"    inbox: {run['inbox_rows']} rows for {run['events']} event ids, outcomes "
                f"{run['inbox_outcomes']}, {run['redelivered']} delivered more than once; "
                f"orders {run['orders']} for the emulator's {run['expected_orders']}, "
                f"{run['mismatched_orders']} differ -> {'ok' if run['ok'] else 'WRONG'}"
            )
    sessions = report.get("sqlite", {}).get("emulator_sessions")
    if sessions:
        out.append(
            f"Stripe sessions for the pay links: {sessions['after_first_press']} after the first "
            f"presses, {sessions['after_benchmark']} after the runs (POST reuse must create none)"
        )
    race = report.get("postgres", {}).get("race")
    if race:
        out.append(
            f"confirm race: per process {race['per_process']}, "
            f"{race['distinct_locations']} distinct redirect(s), "
            f"sessions for the link {race['emulator_sessions_for_link']}"
        )
    for m in report.get("memory", []):
        series = "; ".join(" ".join(f"{x:g}" for x in v["every_10s"]) for v in m["processes"])
        out.append(f"memory {m['label']}: statuses {m['statuses']}, RSS MB every 10 s: {series}")
    for name, log in report.get("logs", {}).items():
        if log:
            out.append(f"{name} log (WARNING and above), most frequent:")
            out += [f"  {count:6d}  {message}" for message, count in log.items()]
    out += [f"DIED: {name}" for name in report.get("died", [])]
    return out
