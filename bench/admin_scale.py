"""The admin API as an organisation grows (docs/design.md §8: every admin list call under 50 ms with
100,000 links; bulk issuance of 100,000 rows in one call, at least 2,000 rows/s).

Run by hand, holding the machine's benchmark lock::

    flock /tmp/bench.lock .venv/bin/python bench/admin_scale.py
    flock /tmp/bench.lock .venv/bin/python bench/admin_scale.py --postgres \\
        postgresql://postgres@127.0.0.1:5432/test --links 100000 --bulk-rows 100000

For each database (SQLite always; PostgreSQL with ``--postgres``): a fresh database, migrated,
seeded with ``--links`` links in the mix of a season under way (most paid, some pending,
processing, failed, revoked, expired, opened, issued; a few paid twice), analysed on PostgreSQL
(as autovacuum would have done), then a gateway serving the admin API on loopback. Every list
variant is timed over HTTP, ``--rounds`` times each (median and slowest): the first page, a deep
page by cursor and by offset, each status filter, a ref prefix, a date range. Then one
``POST /admin/api/links/bulk`` of ``--bulk-rows`` new rows.

:func:`run` returns the rows ``(row, result, target, met)`` for ``bench/run.py``'s table
(``--only admin``); ``met`` is None where there is no target (offset pages).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.adapters.db.engine import Database  # noqa: E402
from gateway.adapters.db.models import AuditEntry, Link, LinkItem, LinkPreview, Order  # noqa: E402
from gateway.services.link_listing import encode_cursor  # noqa: E402

# (row, result, target, met): met is None where there is no target.
AdminRow = tuple[str, str, str, bool | None]

LIST_TARGET_MS = 50.0
BULK_TARGET_ROWS_PER_S = 2000.0
ADMIN_KEY = "adm_bench_" + secrets.token_hex(12)
_DAY = timedelta(days=1)
_SEED_BATCH = 5000


# --- seeding ----------------------------------------------------------------------------------


def _kind(i: int) -> str:
    """A season under way: what link ``i`` has become (by its last two digits)."""
    bucket = i % 100
    for last, kind in (
        (54, "paid"),
        (59, "pending"),
        (61, "processing"),
        (62, "failed"),
        (67, "revoked"),
        (77, "expired"),
        (87, "opened"),
    ):
        if bucket <= last:
            return kind
    return "issued"


async def seed(db: Database, count: int, now: datetime) -> None:
    """``count`` links over the past year, with their items, audit entries, orders, previews."""
    span = timedelta(days=365)
    for first in range(0, count, _SEED_BATCH):
        links, items, audit, orders, previews = [], [], [], [], []
        for i in range(first, min(first + _SEED_BATCH, count)):
            kind = _kind(i)
            created = now - span + span * (i / count)
            link_id = f"lk_{i:012d}"[-15:]
            valid = timedelta(days=2) if kind == "expired" else timedelta(days=400)
            if kind == "expired":
                created = min(created, now - 3 * _DAY)
            links.append(
                {
                    "id": link_id,
                    "email": f"parent{i}@example.com",
                    "name": f"Parent {i}",
                    "description": "Season fee",
                    "currency": "usd",
                    "amount_total": 15000,
                    "ref": f"{2025 + i % 2}/{i}",
                    "created_at": created,
                    "created_by": "admin:bench",
                    "valid_until": created + valid,
                    "revoked_at": created + _DAY if kind == "revoked" else None,
                    "revoked_by": "admin:bench" if kind == "revoked" else None,
                    "open_count": 0 if kind == "issued" else 1 + i % 3,
                    "sent_count": 1,
                }
            )
            items.append(
                {
                    "link_id": link_id,
                    "position": 0,
                    "description": "Season fee",
                    "amount": 15000,
                    "quantity": 1,
                }
            )
            audit.append(
                {"at": created, "link_id": link_id, "action": "link.issued", "actor": "bench"}
            )
            status = {"paid", "pending", "processing", "failed"} & {kind}
            if status:
                orders.append(_order(f"ord_{i}", link_id, status.pop(), created + _DAY))
            if kind == "paid" and i % 10 == 0:
                orders.append(_order(f"ord_{i}_c", link_id, "canceled", created))
            if kind == "paid" and i % 1000 == 0:
                dup = _order(f"ord_{i}_d", link_id, "paid", created + 2 * _DAY)
                dup["duplicate_of"] = f"ord_{i}"
                orders.append(dup)
            if i % 50 == 0:
                previews.append(
                    {
                        "link_id": link_id,
                        "bot_name": "whatsapp",
                        "count": 1,
                        "first_at": created,
                        "last_at": created,
                    }
                )
        async with db.write() as session:
            await session.execute(sa.insert(Link), links)
            await session.execute(sa.insert(LinkItem), items)
            await session.execute(sa.insert(AuditEntry), audit)
            if orders:
                await session.execute(sa.insert(Order), orders)
            if previews:
                await session.execute(sa.insert(LinkPreview), previews)
    if not db.is_sqlite:
        # What autovacuum does within a minute of such a load (since PostgreSQL 13 an insert-only
        # table is vacuumed too, autovacuum_vacuum_insert_threshold): statistics, without which
        # PostgreSQL plans these tables as if they were empty, and the visibility map, without
        # which an index-only scan reads the table anyway. This server may run without it.
        async with db.engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(
                sa.text("VACUUM (ANALYZE) links, link_items, orders, link_previews, audit_entries")
            )


def _order(order_id: str, link_id: str, status: str, at: datetime) -> dict[str, Any]:
    return {
        "id": order_id,
        "link_id": link_id,
        "status": status,
        "amount_total": 15000,
        "currency": "usd",
        "created_at": at,
        "updated_at": at,
        "paid_at": at if status == "paid" else None,
        "refunded_amount": 0,
        "disputed": False,
    }


# --- the gateway --------------------------------------------------------------------------------


def _settings(database_url: str, public_url: str) -> Any:
    from gateway.config import load_settings

    return load_settings(
        path=None,
        env={
            "GATEWAY_DATABASE_URL": database_url,
            "GATEWAY_TOKENS_SECRET_KEYS": secrets.token_hex(16),
            "GATEWAY_SERVER_PUBLIC_URL": public_url,
            "GATEWAY_STRIPE_API_BASE": "http://127.0.0.1:9",  # never called here
            "GATEWAY_STRIPE_API_KEY": "sk_test_bench",
            "GATEWAY_STRIPE_WEBHOOK_SECRET": "whsec_bench",
            "GATEWAY_ADMIN_API_KEYS": f"bench:{ADMIN_KEY}",
        },
    )


async def _measure(
    http: aiohttp.ClientSession, base: str, params: dict[str, str], rounds: int
) -> tuple[float, float, int]:
    """Median and slowest milliseconds of ``rounds`` calls (after one warm-up), and the count."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    times: list[float] = []
    returned = 0
    for attempt in range(rounds + 1):
        started = time.perf_counter()
        async with http.get(f"{base}/admin/api/links", params=params, headers=headers) as answer:
            body = await answer.json()
            if answer.status != 200:
                raise RuntimeError(f"{params}: {answer.status} {body}")
        elapsed = (time.perf_counter() - started) * 1000
        returned = len(body["links"])
        if attempt:
            times.append(elapsed)
    return statistics.median(times), max(times), returned


async def _deep_cursor(db: Database, depth: int) -> str:
    async with db.read() as session:
        created_at, link_id = (
            await session.execute(
                sa.select(Link.created_at, Link.id)
                .order_by(Link.created_at.desc(), Link.id.desc())
                .offset(depth - 1)
                .limit(1)
            )
        ).one()
    return encode_cursor(created_at, link_id)


async def _one_backend(
    label: str, database_url: str, links: int, bulk_rows: int, rounds: int
) -> list[AdminRow]:
    from gateway.app import create_app
    from gateway.clock import SystemClock
    from gateway.web.keys import DATABASE

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(_settings(database_url, base), clock=SystemClock(), background_tasks=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    rows: list[AdminRow] = []
    try:
        db: Database = app[DATABASE]
        started = time.perf_counter()
        await seed(db, links, datetime.now(UTC))
        print(f"{label}: seeded {links:,} links in {time.perf_counter() - started:.1f} s")
        deep = int(links * 0.9)
        variants: list[tuple[str, dict[str, str]]] = [
            ("first page", {}),
            (f"deep page by cursor (link {deep:,})", {"cursor": await _deep_cursor(db, deep)}),
            (f"deep page by offset ({deep:,})", {"offset": str(deep)}),
            *[(f"status={s}", {"status": s}) for s in _statuses()],
            ("ref prefix 2026/1", {"ref_prefix": "2026/1"}),
            ("ref prefix 2025/4242", {"ref_prefix": "2025/4242"}),
            ("created in one month", {"created_from": _month_ago(), "created_to": _today()}),
        ]
        timeout = aiohttp.ClientTimeout(total=600)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            for name, params in variants:
                median, slowest, returned = await _measure(http, base, params, rounds)
                target = f"< {LIST_TARGET_MS:.0f} ms"
                met: bool | None = median < LIST_TARGET_MS
                if "offset" in params:
                    target, met = "none (offset; use the cursor)", None
                result = f"{median:.1f} ms median, {slowest:.1f} max ({returned} links)"
                rows.append((f"admin list, {label}: {name}", result, target, met))
                print(f"  {name:<40} {result}")
            rows.append(await _bulk(http, base, label, bulk_rows))
            print(f"  {rows[-1][0]:<40} {rows[-1][1]}")
    finally:
        await runner.cleanup()
    return rows


def _statuses() -> Sequence[str]:
    from gateway.services.link_listing import STATUSES

    return STATUSES


def _month_ago() -> str:
    return (datetime.now(UTC) - timedelta(days=30)).date().isoformat()


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


async def _bulk(http: aiohttp.ClientSession, base: str, label: str, count: int) -> AdminRow:
    lines = ["email,name,ref,items"]
    lines += [
        f"bulk{i}@example.com,Bulk Parent {i},bulk/{i},Season fee=150.00 | Kit=25.00x2"
        for i in range(count)
    ]
    body = ("\n".join(lines) + "\n").encode()
    headers = {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "text/csv"}
    started = time.perf_counter()
    async with http.post(f"{base}/admin/api/links/bulk", data=body, headers=headers) as answer:
        report = await answer.read()  # the summary leads; the rows are not parsed here
        if answer.status != 201 or f'"created": {count},'.encode() not in report[:400]:
            raise RuntimeError(f"bulk: {answer.status} {report[:500]!r}")
    elapsed = time.perf_counter() - started
    result = f"{count / elapsed:,.0f} rows/s ({count:,} rows in {elapsed:.1f} s, one call)"
    return (
        f"bulk issuance, {label}",
        result,
        f">= {BULK_TARGET_ROWS_PER_S:,.0f} rows/s",
        count / elapsed >= BULK_TARGET_ROWS_PER_S,
    )


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _postgres_database(admin_url: str) -> tuple[str, str]:
    import asyncpg

    name = "bench_admin_" + secrets.token_hex(4)
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = sa.engine.make_url(admin_url).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False), name


async def _drop_postgres(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def run_async(
    *,
    links: int = 100_000,
    bulk_rows: int = 100_000,
    rounds: int = 7,
    postgres_url: str | None = None,
    sqlite: bool = True,
) -> list[AdminRow]:
    rows: list[AdminRow] = []
    if sqlite:
        with tempfile.TemporaryDirectory(prefix="admin-scale-") as tmp:
            url = f"sqlite+aiosqlite:///{tmp}/admin.sqlite3"
            rows += await _one_backend(f"SQLite, {links:,} links", url, links, bulk_rows, rounds)
    if postgres_url:
        url, name = await _postgres_database(postgres_url)
        try:
            label = f"PostgreSQL, {links:,} links"
            rows += await _one_backend(label, url, links, bulk_rows, rounds)
        finally:
            await _drop_postgres(postgres_url, name)
    return rows


def run(
    *,
    links: int = 100_000,
    bulk_rows: int = 100_000,
    rounds: int = 7,
    postgres_url: str | None = None,
) -> list[AdminRow]:
    """Every row of this benchmark: ``(row, result, target, met)``."""
    return asyncio.run(
        run_async(links=links, bulk_rows=bulk_rows, rounds=rounds, postgres_url=postgres_url)
    )


def print_table(rows: Sequence[AdminRow]) -> None:
    header = ("row", "result", "target", "met")
    cells = [header, *((r, result, target, _met(met)) for r, result, target, met in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    for row in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def _met(met: bool | None) -> str:
    return {True: "yes", False: "NO", None: "-"}[met]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=100_000)
    parser.add_argument("--bulk-rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--postgres", metavar="URL", help="also on PostgreSQL (admin URL)")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args(argv)
    if args.no_sqlite and not args.postgres:
        parser.error("--no-sqlite needs --postgres")
    rows = asyncio.run(
        run_async(
            links=args.links,
            bulk_rows=args.bulk_rows,
            rounds=args.rounds,
            postgres_url=args.postgres,
            sqlite=not args.no_sqlite,
        )
    )
    print()
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
