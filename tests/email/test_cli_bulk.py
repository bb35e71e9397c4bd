"""``gateway links bulk FILE --send`` against a real SMTP server on loopback (aiosmtpd in a
thread, since the CLI runs its own event loop), and the CLI's list/show/resend."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import unused_port
from aiosmtpd.controller import Controller

from gateway.cli import main
from gateway.demo_mail import MailSink
from tests.harness import TOKEN_SECRET

TEAM = """email,name,ref,items
ana@example.com,Ana Lopez,2026-04/p1,Spring fee=150.00
ben@example.com,Ben Okafor,2026-04/p2,Spring fee=150.00 | Kit=25.00x2
kim@example.com,Kim Ito,2026-04/p3,Spring fee=120.00
"""


@pytest.fixture
def smtp_port() -> int:
    return unused_port()


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_port: int) -> Path:
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite3")
    monkeypatch.setenv("GATEWAY_TOKENS_SECRET_KEYS", TOKEN_SECRET)
    monkeypatch.setenv("GATEWAY_SERVER_PUBLIC_URL", "https://pay.example.org")
    monkeypatch.setenv("GATEWAY_STRIPE_API_BASE", "http://127.0.0.1:9")  # never called here
    monkeypatch.setenv("GATEWAY_EMAIL_HOST", "127.0.0.1")
    monkeypatch.setenv("GATEWAY_EMAIL_PORT", str(smtp_port))
    monkeypatch.setenv("GATEWAY_EMAIL_FROM_ADDRESS", "treasurer@riverside.example")
    monkeypatch.setenv("GATEWAY_EMAIL_TIMEOUT", "5")
    (tmp_path / "team.csv").write_text(TEAM)
    return tmp_path


@pytest.fixture
def smtp(smtp_port: int) -> Iterator[MailSink]:
    sink = MailSink()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def urls_by_ref(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    code, out, err = run(capsys, "links", "list", "--json")
    assert code == 0, err
    result = {}
    for row in json.loads(out):
        _, show, _ = run(capsys, "links", "show", row["id"], "--json")
        result[row["ref"]] = json.loads(show)["url"]
    return result


def link_in(text: str) -> str:
    match = re.search(r"(https://pay\.example\.org/pay/\S+)", text)
    assert match, text
    return match[1]


class TestBulkSend:
    def test_one_message_per_payer_with_the_right_link_and_no_second_send(
        self, cli_env: Path, smtp: MailSink, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, err = run(capsys, "links", "bulk", "team.csv", "--send")
        assert code == 0, err
        assert "3 created" in out and "3 emailed" in out
        urls = urls_by_ref(capsys)
        for email, ref in (
            ("ana@example.com", "2026-04/p1"),
            ("ben@example.com", "2026-04/p2"),
            ("kim@example.com", "2026-04/p3"),
        ):
            (mail,) = smtp.to(email)
            assert link_in(mail.text()) == urls[ref]

        code, out, err = run(capsys, "links", "bulk", "team.csv", "--send", "--json")
        assert code == 0, err
        report = json.loads(out)
        assert (report["created"], report["existing"], report["emails_sent"]) == (0, 3, 0)
        assert len(smtp.messages) == 3

        code, out, _ = run(capsys, "links", "bulk", "team.csv", "--send", "--resend", "--json")
        assert code == 0 and json.loads(out)["emails_sent"] == 3
        assert len(smtp.messages) == 6

    def test_dry_run_and_a_bad_row(
        self, cli_env: Path, smtp: MailSink, capsys: pytest.CaptureFixture[str]
    ) -> None:
        (cli_env / "bad.csv").write_text(TEAM + "nobody,,2026-04/p4,Fee=abc\n")
        code, _, err = run(capsys, "links", "bulk", "bad.csv", "--send")
        assert code == 2
        assert "row 4 (2026-04/p4): email" in err and "nothing was created" in err
        code, out, _ = run(capsys, "links", "list", "--json")
        assert json.loads(out) == [] and smtp.messages == []

        code, out, err = run(capsys, "links", "bulk", "team.csv", "--dry-run", "--json")
        assert code == 0, err
        assert json.loads(out)["would_create"] == 3
        _, out, _ = run(capsys, "links", "list", "--json")
        assert json.loads(out) == []


class TestSmtpDown:
    def test_fails_visibly_links_stay_and_a_rerun_sends_only_the_unsent(
        self, cli_env: Path, smtp_port: int, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, err = run(capsys, "links", "bulk", "team.csv", "--send")
        assert code == 1
        assert "3 email(s) not sent" in err and "FAILED" in out
        _, out, _ = run(capsys, "links", "list", "--json")
        rows = json.loads(out)
        assert len(rows) == 3
        assert all(r["email_delivery"]["last_error"] for r in rows)
        code, out, _ = run(capsys, "links", "list")
        assert out.count("FAILED") == 3

        sink = MailSink()
        controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
        controller.start()
        try:
            ana = next(r for r in rows if r["ref"] == "2026-04/p1")
            code, out, err = run(capsys, "links", "resend", ana["id"])
            assert code == 0, err
            code, out, err = run(capsys, "links", "bulk", "team.csv", "--send", "--json")
            assert code == 0, err
            assert json.loads(out)["emails_sent"] == 2  # Ana's was sent by the resend
        finally:
            controller.stop()
        assert sorted(r for m in sink.messages for r in m.recipients) == [
            "ana@example.com",
            "ben@example.com",
            "kim@example.com",
        ]
        _, out, _ = run(capsys, "links", "show", ana["id"])
        assert "emailed   1 time(s)" in out and "FAILED" not in out


class TestListFilters:
    def test_status_filter_and_table(
        self, cli_env: Path, smtp: MailSink, capsys: pytest.CaptureFixture[str]
    ) -> None:
        run(capsys, "links", "bulk", "team.csv")
        _, out, _ = run(capsys, "links", "list", "--json")
        first = json.loads(out)[0]["id"]
        run(capsys, "links", "revoke", first)
        code, out, _ = run(capsys, "links", "list", "--status", "revoked", "--json")
        assert code == 0 and [r["id"] for r in json.loads(out)] == [first]
        code, out, _ = run(capsys, "links", "list", "--status", "issued", "--page", "--json")
        assert json.loads(out)["total"] == 2
        with pytest.raises(SystemExit) as exited:
            run(capsys, "links", "list", "--status", "bogus")
        assert exited.value.code == 2
        code, _, err = run(capsys, "links", "list", "--created-from", "last week")
        assert code == 2 and "date" in err
