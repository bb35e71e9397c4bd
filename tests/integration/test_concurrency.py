"""docs/design.md §5 invariant 2: one pending order and one Stripe session per link, however many
clicks arrive at once, in one process and across processes sharing PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from gateway.adapters.db.engine import create_database
from gateway.adapters.db.migrate import upgrade
from gateway.adapters.db.models import Order
from gateway.clock import SystemClock
from gateway.dev.emulator import StripeEmulator, create_emulator_app
from tests.conftest import create_pg_database, drop_pg_database
from tests.harness import BROWSER_HEADERS, WEBHOOK_SECRET, session_id_from, start_harness
from tests.processes import GatewayProcess, run_cli


async def test_50_concurrent_posts_in_one_process_make_one_session(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str
) -> None:
    h = await start_harness(aiohttp_server, aiohttp_client, database_url)
    link = await h.issue()
    responses = await asyncio.gather(*(h.post(link) for _ in range(50)))
    statuses = [r.status for r in responses]
    assert statuses == [303] * 50, statuses
    locations = {r.headers["Location"] for r in responses}
    assert len(locations) == 1
    assert h.emulator.sessions_created() == 1
    orders = await h.orders(link)
    assert [o.status for o in orders] == ["pending"]
    assert orders[0].stripe_session_id == session_id_from(locations.pop())


async def test_the_database_refuses_a_second_pending_order(database_url: str) -> None:
    """The rule lives in the schema, not only in the code that usually keeps it."""
    from datetime import UTC, datetime

    from sqlalchemy.exc import IntegrityError

    from gateway.adapters.db.models import Link

    db = create_database(database_url)
    await upgrade(db)
    now = datetime.now(UTC)
    try:
        async with db.write() as session:
            session.add(
                Link(
                    id="lk_aaaaaaaaaaaa",
                    email="p@example.com",
                    name="P",
                    description="d",
                    currency="usd",
                    amount_total=100,
                    ref="r",
                    created_at=now,
                    created_by="t",
                    valid_until=now,
                    open_count=0,
                    sent_count=0,
                )
            )
            await session.flush()
            session.add(
                Order(
                    id="ord_1",
                    link_id="lk_aaaaaaaaaaaa",
                    status="pending",
                    amount_total=100,
                    currency="usd",
                    created_at=now,
                    updated_at=now,
                )
            )
        with pytest.raises(IntegrityError):
            async with db.write() as session:
                session.add(
                    Order(
                        id="ord_2",
                        link_id="lk_aaaaaaaaaaaa",
                        status="pending",
                        amount_total=100,
                        currency="usd",
                        created_at=now,
                        updated_at=now,
                    )
                )
        async with db.write() as session:  # a canceled one beside it is fine
            session.add(
                Order(
                    id="ord_3",
                    link_id="lk_aaaaaaaaaaaa",
                    status="canceled",
                    amount_total=100,
                    currency="usd",
                    created_at=now,
                    updated_at=now,
                )
            )
    finally:
        await db.dispose()


@pytest.mark.slow
async def test_concurrent_posts_across_two_gateway_processes_on_postgres(
    aiohttp_server: Any,
) -> None:
    database_url = await create_pg_database()
    emulator = StripeEmulator(
        clock=SystemClock(), webhook_mode="manual", webhook_secret=WEBHOOK_SECRET
    )
    server = await aiohttp_server(create_emulator_app(emulator))
    emulator_url = str(server.make_url("")).rstrip("/")
    emulator.public_url = emulator_url
    # Replicas behind one load balancer share one public URL; it is part of the session's
    # parameters, which must be identical for Stripe's idempotency replay.
    gateways = [
        GatewayProcess(
            database_url, emulator_url, GATEWAY_SERVER_PUBLIC_URL="https://pay.example.org"
        )
        for _ in range(2)
    ]
    try:
        created = run_cli(
            [
                "links",
                "create",
                "--email",
                "p@example.com",
                "--name",
                "Sam",
                "--item",
                "Spring fee=150.00",
                "--ref",
                "two-procs",
                "--json",
            ],
            gateways[0].env,
        )
        assert created.returncode == 0, created.stderr
        import json

        token = json.loads(created.stdout)["token"]
        await asyncio.gather(*(g.start() for g in gateways))
        async with aiohttp.ClientSession() as client:

            async def press(i: int) -> tuple[int, str]:
                url = f"{gateways[i % 2].url}/pay/{token}"
                async with client.post(url, headers=BROWSER_HEADERS, allow_redirects=False) as r:
                    return r.status, r.headers.get("Location", "")

            results = await asyncio.gather(*(press(i) for i in range(200)))
        statuses = sorted({status for status, _ in results})
        if statuses != [303]:
            for g in gateways:
                g.stop()
            logs = [g.stderr[-3000:] for g in gateways]
            pytest.fail(f"statuses {statuses}; gateway logs: {logs}")
        assert len({location for _, location in results}) == 1
        assert emulator.sessions_created() == 1
        db = create_database(database_url)
        try:
            async with db.read() as session:
                orders = (await session.execute(sa.select(Order))).scalars().all()
        finally:
            await db.dispose()
        assert [o.status for o in orders] == ["pending"]
    finally:
        for g in gateways:
            g.stop()
        await drop_pg_database(database_url)
