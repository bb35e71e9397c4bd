"""``gateway orders refund / mark-paid / orphans / attach`` against the same database and the
emulator over HTTP (the CLI runs in a thread of its own, as a separate command would)."""

from __future__ import annotations

import asyncio
import json

import pytest

from gateway.cli import main
from tests.harness import TOKEN_SECRET, session_id_from
from tests.money.support import UNUSED_SMTP_PORT, MoneyHarness
from tests.money.test_orphans import lose_order_row


@pytest.fixture
def cli(
    h: MoneyHarness, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> MoneyHarness:
    for name in ("GATEWAY_CONFIG", "LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.chdir(str(tmp_path))
    monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
    monkeypatch.setenv("GATEWAY_TOKENS_SECRET_KEYS", TOKEN_SECRET)
    monkeypatch.setenv("GATEWAY_SERVER_PUBLIC_URL", "https://pay.example.org")
    monkeypatch.setenv("GATEWAY_STRIPE_API_BASE", str(h.emulator_server.make_url("")).rstrip("/"))
    monkeypatch.setenv("GATEWAY_STRIPE_API_KEY", "sk_test_cli")
    # Messages are owed as they are by the app (never sent here).
    monkeypatch.setenv("GATEWAY_EMAIL_HOST", "127.0.0.1")
    monkeypatch.setenv("GATEWAY_EMAIL_PORT", str(UNUSED_SMTP_PORT))
    monkeypatch.setenv("GATEWAY_EMAIL_FROM_ADDRESS", "treasurer@riverside.example")
    return h


async def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(args))
    out, err = capsys.readouterr()
    return code, out, err


async def test_refund_from_the_command_line(
    cli: MoneyHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    link = await cli.issue()
    order = await cli.paid(link)
    code, out, err = await run(
        capsys,
        *("orders", "refund", order.id, "--amount", "50.00", "--reason", "injured"),
        *("--expect", "150.00", "--json"),
    )
    assert code == 0, err
    done = json.loads(out)
    assert (done["amount"], done["refundable"]) == (5000, 10000)
    # The same command again: the refundable amount it expects has changed.
    code, out, err = await run(
        capsys,
        *("orders", "refund", order.id, "--amount", "50.00", "--reason", "injured"),
        *("--expect", "150.00"),
    )
    assert code == 1
    assert "already refunded 50.00 USD; refundable now 100.00 USD" in err
    code, out, err = await run(
        capsys, "orders", "refund", order.id, "--amount", "200.00", "--reason", "x"
    )
    assert code == 2 and "more than the 100.00 USD still refundable" in err
    code, out, err = await run(capsys, "orders", "refund", order.id, "--reason", "rest")
    assert code == 0, err
    assert "refunded 100.00 USD of order" in out and "0.00 USD left" in out
    assert sum(r["amount"] for r in cli.stripe_refunds()) == 15000
    code, out, err = await run(capsys, "orders", "refund", "ord_AAAAAAAAAAAAAAAA", "--reason", "x")
    assert code == 1 and "not found" in err


async def test_mark_paid_orphans_and_attach_from_the_command_line(
    cli: MoneyHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    link = await cli.issue()
    args = ("orders", "mark-paid", link.id, "--amount", "150.00", "--method", "bank_transfer")
    code, out, err = await run(capsys, *args, "--note", "transfer ref 8812")
    assert code == 0, err
    assert f"{link.id} marked paid: 150.00 USD (bank_transfer)" in out
    code, out, err = await run(capsys, *args, "--note", "transfer ref 8812")
    assert code == 0 and "already marked paid" in out
    code, out, err = await run(capsys, *args, "--note", "another")
    assert code == 1 and "already paid" in err
    assert (await cli.get(link)).status == 409
    code, out, err = await run(capsys, "orders", "list")
    assert code == 0 and "paid outside Stripe: bank_transfer" in out
    code, out, err = await run(capsys, "orders", "list", "--json")
    (row,) = json.loads(out)
    assert (row["method"], row["payment_note"]) == ("bank_transfer", "transfer ref 8812")

    code, out, err = await run(capsys, "orders", "orphans", "--json")
    assert (code, json.loads(out)) == (0, [])
    code, out, err = await run(
        capsys, "orders", "attach", "op_AAAAAAAAAAAAAAAA", "--reason", "parent called"
    )
    assert code == 1 and "not found" in err


async def test_orphans_found_by_reconcile_are_listed_and_attached_from_the_command_line(
    cli: MoneyHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    link = await cli.issue()
    pressed = await cli.post(link)
    session_id = session_id_from(pressed.headers["Location"])
    (order,) = await cli.orders(link)
    await lose_order_row(cli, order.id)
    cli.emulator.pay(session_id)
    code, out, err = await run(capsys, "reconcile", "--json")
    assert code == 0, err
    (orphan_id,) = json.loads(out)["orphans_found"]
    code, out, err = await run(capsys, "orders", "orphans")
    assert code == 0 and orphan_id in out and "150.00 USD" in out and link.id in out
    code, out, err = await run(capsys, "orders", "attach", orphan_id, "--reason", "parent called")
    assert code == 0, err
    assert f"{orphan_id} attached: order {order.id} on {link.id}" in out
    code, out, err = await run(capsys, "orders", "attach", orphan_id, "--reason", "again")
    assert code == 0 and "already attached" in out
    assert [o.status for o in await cli.orders(link)] == ["paid"]
    assert len(await cli.owed("receipt", link.id)) == 1
    code, out, err = await run(capsys, "orders", "orphans", "--json")
    assert json.loads(out) == []
