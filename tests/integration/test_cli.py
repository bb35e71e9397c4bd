"""The ``gateway`` command, run in-process against a SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.domain.text import Text
from gateway.i18n import localize, translate
from tests.harness import TOKEN_SECRET


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # English output unless a test asks for another language (the CLI reads the locale's).
    for name in ("GATEWAY_CONFIG", "LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.chdir(tmp_path)  # no config.toml here: defaults plus the environment
    monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite3")
    monkeypatch.setenv("GATEWAY_TOKENS_SECRET_KEYS", TOKEN_SECRET)
    monkeypatch.setenv("GATEWAY_SERVER_PUBLIC_URL", "https://pay.example.org")
    monkeypatch.setenv("GATEWAY_STRIPE_API_BASE", "http://127.0.0.1:9")  # never called here
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


CREATE = [
    "links",
    "create",
    "--email",
    "sam@example.com",
    "--name",
    "Sam Rivera",
    "--description",
    "Spring season",
    "--item",
    "Spring fee=150.00",
    "--item",
    "Kit=25.50x2",
    "--currency",
    "usd",
    "--ref",
    "2026-04/player-26",
    "--valid-for",
    "30d",
]


def test_create_json_prints_id_url_and_token(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *CREATE, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["url"] == f"https://pay.example.org/pay/{data['token']}"
    assert data["token"].startswith(data["id"] + ".")
    assert data["amount_total"] == 15000 + 2 * 2550
    assert "sam@example.com" not in data["url"] and "Sam" not in data["url"]


def test_list_show_revoke_and_orders(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, *CREATE, "--json")
    link_id = json.loads(out)["id"]

    code, out, _ = run(capsys, "links", "list", "--json")
    assert code == 0
    (row,) = json.loads(out)
    assert (row["id"], row["state"], row["ref"]) == (link_id, "payable", "2026-04/player-26")

    code, out, _ = run(capsys, "links", "list")
    assert link_id in out and "payable" in out and "201.00 USD" in out

    code, out, _ = run(capsys, "links", "show", link_id, "--json")
    detail = json.loads(out)
    assert [i["amount"] for i in detail["items"]] == [15000, 2550]
    assert detail["audit"][0]["action"] == "link.issued"

    code, out, _ = run(capsys, "links", "revoke", link_id, "--reason", "left the team")
    assert code == 0 and "revoked" in out
    code, out, _ = run(capsys, "links", "revoke", link_id)
    assert "already revoked" in out
    _, out, _ = run(capsys, "links", "show", link_id, "--json")
    detail = json.loads(out)
    assert detail["state"] == "revoked"
    assert [a["action"] for a in detail["audit"]] == ["link.issued", "link.revoked"]

    code, out, _ = run(capsys, "orders", "list", "--json")
    assert code == 0 and json.loads(out) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--item", "Fee=abc"], "items[0]"),
        (["--item", "Fee=10", "--email", "nope"], "email"),
        (["--item", "Fee=10", "--valid-for", "soon"], "--valid-for"),
        (["--item", "Fee=10", "--currency", "dollars"], "currency"),
    ],
)
def test_bad_input_is_reported_and_creates_nothing(
    cli_env: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    base = ["links", "create", "--email", "sam@example.com", "--name", "Sam"]
    if "--email" in args:
        base = ["links", "create", "--name", "Sam"]
    code, _, err = run(capsys, *base, *args)
    assert code == 2
    assert message in err
    _, out, _ = run(capsys, "links", "list", "--json")
    assert json.loads(out) == []


def test_show_unknown_link_is_an_error(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "links", "show", "lk_doesnotexist")
    assert code == 1 and "not found" in err


def test_bad_config_names_the_key(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_CHECKOUT_STALE_AFTER", "whenever")
    code, _, err = run(capsys, "links", "list")
    assert code == 2 and "GATEWAY_CHECKOUT_STALE_AFTER" in err


def test_db_upgrade(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "db", "upgrade")
    assert code == 0
    assert "database at revision" in out


def test_serve_refuses_to_start_without_secrets(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATEWAY_TOKENS_SECRET_KEYS")
    code, _, err = run(capsys, "serve")
    assert code == 2
    assert "GATEWAY_TOKENS_SECRET_KEYS" in err and "GATEWAY_STRIPE_API_KEY" in err


def test_a_links_command_without_token_keys_says_which_key_is_missing(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATEWAY_TOKENS_SECRET_KEYS")
    monkeypatch.delenv("GATEWAY_DEMO", raising=False)
    code, _out, err = run(capsys, "links", "list")
    assert code == 2
    assert "tokens.secret_keys" in err and "GATEWAY_TOKENS_SECRET_KEYS" in err
    assert "Traceback" not in err


# --- a link's locale, on both databases -----------------------------------------------------


@pytest.fixture
def any_db_cli(cli_env: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
    return cli_env


@pytest.mark.parametrize(("given", "stored"), [("es", "es"), ("pt_br", "pt-BR"), ("FR", "fr")])
def test_create_with_a_locale_stores_it_normalised_and_shows_it(
    any_db_cli: Path, capsys: pytest.CaptureFixture[str], given: str, stored: str
) -> None:
    code, out, err = run(capsys, *CREATE, "--locale", given, "--json")
    assert code == 0, err
    created = json.loads(out)
    assert created["locale"] == stored
    _, out, _ = run(capsys, "links", "show", created["id"], "--json")
    assert json.loads(out)["locale"] == stored
    _, out, _ = run(capsys, "links", "show", created["id"])
    assert f"  locale    {stored}\n" in out
    _, out, _ = run(capsys, "links", "list", "--json")
    assert [row["locale"] for row in json.loads(out)] == [stored]


def test_create_prints_the_locale_it_stored(
    any_db_cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *CREATE, "--locale", "pt_br")
    assert code == 0, err
    assert "  locale pt-BR\n" in out


def test_a_locale_not_offered_is_refused_naming_the_offered_ones_and_creates_nothing(
    any_db_cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, *CREATE, "--locale", "de")
    assert code == 2
    assert "locale" in err and "offered: en, es, pt-BR, fr" in err
    _, out, _ = run(capsys, "links", "list", "--json")
    assert json.loads(out) == []


def test_without_a_locale_none_is_stored_and_the_payers_browser_decides(
    any_db_cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *CREATE, "--json")
    assert code == 0, err
    created = json.loads(out)
    assert "locale" in created and created["locale"] is None
    _, out, _ = run(capsys, "links", "show", created["id"], "--json")
    detail = json.loads(out)
    assert "locale" in detail and detail["locale"] is None
    _, out, _ = run(capsys, "links", "show", created["id"])
    assert "  locale    - (the payer's browser" in out


def test_create_help_says_what_no_locale_means(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["links", "create", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--locale" in out and "en, es, pt-BR, fr" in out
    assert "follow the payer's browser, else checkout.default_locale" in out


# --- the admin's language (issue 13) ------------------------------------------------------
# Expected text is read through the catalogs, so these hold before and after translation; where
# the Spanish catalog already translates a message, the English one must not be printed.


def in_spanish_only(out: str, msgid: str, values: dict[str, object]) -> None:
    assert translate("es", msgid) % values in out
    if translate("es", msgid) != msgid:
        assert msgid % values not in out


def test_a_spanish_environment_gets_the_cli_in_spanish(
    any_db_cli: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANG", "es_ES.UTF-8")
    code, out, err = run(capsys, *CREATE)
    assert code == 0, err
    _, listed, _ = run(capsys, "links", "list", "--json")
    link_id = json.loads(listed)[0]["id"]
    in_spanish_only(out, "Link %(id)s created", {"id": link_id})
    # Labels in Spanish, values as they are: the amount the admin typed, shown back unambiguously.
    assert translate("es", "total") in out and "201.00 USD" in out
    assert "Spring fee: 150.00 USD" in out and "Kit: 25.50 USD x2" in out

    _, table, _ = run(capsys, "links", "list")
    header = table.splitlines()[0]
    for label in ("ref", "amount", "status", "created"):
        assert translate("es", label).upper() in header
    assert link_id in table and "2026-04/player-26" in table

    _, shown, _ = run(capsys, "links", "show", link_id)
    in_spanish_only(shown, "audit:", {})
    assert translate("es", "- (the payer's browser; emails: the configured default)") in shown

    _, revoked, _ = run(capsys, "links", "revoke", link_id)
    in_spanish_only(revoked, "%(id)s revoked", {"id": link_id})
    _, again, _ = run(capsys, "links", "revoke", link_id)
    in_spanish_only(again, "%(id)s was already revoked", {"id": link_id})

    code, _, err = run(capsys, "links", "show", "lk_doesnotexist")
    assert code == 1
    in_spanish_only(err, "not found: %(what)s", {"what": "lk_doesnotexist"})


def test_the_money_refusal_shown_to_a_spanish_admin_names_the_amount_they_typed(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANG", "es_ES.UTF-8")
    args = ["links", "create", "--name", "Sam", "--email", "sam@", "--currency", "eur"]
    code, _, err = run(capsys, *args, "--item", "Cuota=1.500,00")
    assert code == 2
    ambiguous = Text(
        "%(amount)s is ambiguous (did you mean %(reading)s?): write digits with a dot for "
        "decimals, e.g. 1500.00 (a comma only between thousands, and only with a dot "
        "decimal part: 1,500.00)",
        amount="'1.500,00'",
        reading="1500.00",
    )
    assert f"gateway: items[0]: {localize('es', ambiguous)}\n" in err
    assert "'1.500,00'" in err and "1500.00" in err
    bad_email = Text("not an email address: %(email)s", email="'sam@'")
    assert f"gateway: email: {localize('es', bad_email)}\n" in err
    if translate("es", ambiguous.template) != ambiguous.template:
        assert str(ambiguous) not in err
    _, out, _ = run(capsys, "links", "list", "--json")
    assert json.loads(out) == []


def test_without_an_offered_locale_in_the_environment_the_configured_default(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    monkeypatch.setenv("GATEWAY_CHECKOUT_DEFAULT_LOCALE", "fr")
    code, out, _ = run(capsys, "links", "list")
    assert code == 0
    assert translate("fr", "(none)") in out
    assert translate("fr", "amount").upper() in out.splitlines()[0]
    monkeypatch.setenv("LANGUAGE", "pt_BR:fr")
    _, out, _ = run(capsys, "links", "list")
    assert translate("pt-BR", "amount").upper() in out.splitlines()[0]


def test_json_output_is_the_same_in_every_language(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(capsys, *CREATE, "--json")
    assert code == 0, err
    link_id = json.loads(out)["id"]
    _, english, _ = run(capsys, "links", "show", link_id, "--json")
    monkeypatch.setenv("LANG", "pt_BR.UTF-8")
    _, portuguese, _ = run(capsys, "links", "show", link_id, "--json")
    assert json.loads(portuguese) == json.loads(english)
