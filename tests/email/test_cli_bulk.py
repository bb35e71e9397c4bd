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
from gateway.dev.demo_mail import MailSink
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
        assert "row 5 (2026-04/p4): email" in err and "nothing was created" in err
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


CREATE = ["links", "create", "--email", "ana@example.com", "--name", "Ana Lopez"]


class TestCreate:
    def test_create_shows_the_amounts_and_send_emails_it(
        self, cli_env: Path, smtp: MailSink, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, err = run(
            capsys, *CREATE, "--item", "Fee=1,500.00", "--item", "Kit=25.50x2", "--send"
        )
        assert code == 0, err
        assert "Fee: 1,500.00 USD" in out and "Kit: 25.50 USD x2" in out
        assert "total  1,551.00 USD" in out and "emailed to ana@example.com" in out
        (mail,) = smtp.to("ana@example.com")
        assert link_in(mail.text()) in out

    def test_an_ambiguous_amount_is_refused_with_how_to_write_it(
        self, cli_env: Path, smtp: MailSink, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, _, err = run(capsys, *CREATE, "--item", "Fee=150,00", "--currency", "eur")
        assert code == 2
        assert "did you mean 150.00?" in err and "1,500.00" in err
        _, out, _ = run(capsys, "links", "list", "--json")
        assert json.loads(out) == []

    def test_a_ref_with_a_live_link_is_not_issued_twice(
        self, cli_env: Path, smtp: MailSink, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, first, err = run(capsys, *CREATE, "--item", "Fee=150", "--ref", "r/1", "--json")
        assert code == 0, err
        code, out, err = run(capsys, *CREATE, "--item", "Fee=160", "--ref", "r/1", "--send")
        assert code == 0, err
        assert "already has a live link, so none was created" in out
        assert json.loads(first)["id"] in out and "differs from what you typed in: amount" in out
        assert "total  150.00 USD" in out  # what exists, not what was typed
        assert len(smtp.messages) == 1  # never emailed before: --send sends it once
        code, out, err = run(capsys, *CREATE, "--item", "Fee=1", "--ref", "r/1", "--send")
        assert "not emailed: emailed before" in out and len(smtp.messages) == 1
        code, out, _ = run(
            capsys, *CREATE, "--item", "Fee=160", "--ref", "r/1", "--allow-duplicate-ref"
        )
        assert code == 0 and "created" in out
        _, out, _ = run(capsys, "links", "list", "--json")
        assert len(json.loads(out)) == 2


class TestBulkFiles:
    def test_dry_run_shows_what_was_understood(
        self, cli_env: Path, smtp: MailSink, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, err = run(capsys, "links", "bulk", "team.csv", "--dry-run")
        assert code == 0, err
        line = next(x for x in out.splitlines() if "2026-04/p2" in x)
        for shown in ("Ben Okafor", "ben@example.com", "Kit 25.00 USD x2", "200.00 USD"):
            assert shown in line

    def test_a_semicolon_windows_1252_file_from_excel(
        self, cli_env: Path, smtp: MailSink, capsys: pytest.CaptureFixture[str]
    ) -> None:
        excel = "email;name;ref;amount;description\r\njo@example.com;José Núñez;e/1;85.50;Cuota\r\n"
        (cli_env / "excel.csv").write_bytes(excel.encode("cp1252"))
        code, out, err = run(capsys, "links", "bulk", "excel.csv", "--json")
        assert code == 0, err
        assert "warning: the file is not UTF-8: it was read as Windows-1252" in err
        (row,) = json.loads(out)["rows"]
        assert (row["row"], row["name"], row["total"]) == (2, "José Núñez", "85.50 USD")

    def test_a_utf16_file_is_refused_and_says_how_to_save_it(
        self, cli_env: Path, smtp: MailSink, capsys: pytest.CaptureFixture[str]
    ) -> None:
        (cli_env / "unicode.csv").write_bytes(TEAM.encode("utf-16"))
        code, _, err = run(capsys, "links", "bulk", "unicode.csv")
        assert code == 2 and "UTF-16" in err and "CSV UTF-8" in err


class TestListPages:
    def test_failed_status_and_cursor_pages(
        self, cli_env: Path, smtp: MailSink, capsys: pytest.CaptureFixture[str]
    ) -> None:
        run(capsys, "links", "bulk", "team.csv")
        code, out, _ = run(capsys, "links", "list", "--status", "failed", "--json")
        assert code == 0 and json.loads(out) == []
        code, out, _ = run(capsys, "links", "list", "--limit", "2")
        assert "(showing 2 of 3; next page: --cursor " in out
        first = {ref for ref in ("2026-04/p1", "2026-04/p2", "2026-04/p3") if ref in out}
        cursor = out.rsplit("--cursor ", 1)[1].rstrip(")\n")
        code, out, _ = run(capsys, "links", "list", "--limit", "2", "--cursor", cursor, "--json")
        (last,) = [r["ref"] for r in json.loads(out)]
        assert len(first) == 2 and first | {last} == {"2026-04/p1", "2026-04/p2", "2026-04/p3"}


LOCALES = """email,name,ref,amount,locale
ana@example.com,Ana Lopez,l/1,150.00,es
bia@example.com,Bia Souza,l/2,150.00,pt_br
kim@example.com,Kim Ito,l/3,150.00,
"""


@pytest.fixture
def any_db_cli(cli_env: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
    (cli_env / "locales.csv").write_text(LOCALES)
    return cli_env


class TestBulkLocale:
    def test_dry_run_shows_the_locale_column_as_it_will_be_stored(
        self, any_db_cli: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, err = run(capsys, "links", "bulk", "locales.csv", "--dry-run")
        assert code == 0, err
        header, *lines = out.splitlines()
        assert "LOCALE" in header.split()
        column = header.index("LOCALE")
        # A dry run leaves id, sent and notes empty: nothing follows a row's locale cell.
        cells = {line.split()[1]: (line[column:].split() or [""])[0] for line in lines[:3]}
        assert cells == {"l/1": "es", "l/2": "pt-BR", "l/3": ""}  # "": the browser decides
        _, out, _ = run(capsys, "links", "list", "--json")
        assert json.loads(out) == []

    def test_each_rows_locale_is_stored_and_shown_back(
        self, any_db_cli: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, err = run(capsys, "links", "bulk", "locales.csv", "--json")
        assert code == 0, err
        rows = json.loads(out)["rows"]
        assert [(r["ref"], r["locale"]) for r in rows] == [
            ("l/1", "es"),
            ("l/2", "pt-BR"),
            ("l/3", None),
        ]
        shown = {}
        for r in rows:
            _, detail, _ = run(capsys, "links", "show", r["id"], "--json")
            shown[r["ref"]] = json.loads(detail)["locale"]
        assert shown == {"l/1": "es", "l/2": "pt-BR", "l/3": None}

    def test_a_locale_not_offered_stops_the_run_naming_the_offered_ones(
        self, any_db_cli: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        (any_db_cli / "de.csv").write_text(LOCALES + "max@example.com,Max Bauer,l/4,150.00,de\n")
        code, _, err = run(capsys, "links", "bulk", "de.csv")
        assert code == 2
        assert "row 5 (l/4): locale: unknown locale 'de'; offered: en, es, pt-BR, fr" in err
        assert "nothing was created" in err
        _, out, _ = run(capsys, "links", "list", "--json")
        assert json.loads(out) == []
