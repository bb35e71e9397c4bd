"""``gateway users``, run in-process against a SQLite file (as tests/integration/test_cli.py):
the first admin with a one-time link that works once, list, disable (sessions end), enable,
reset, role changes, the last admin kept, and bad input exiting 2 with nothing written."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from gateway.cli import main
from gateway.config import load_settings
from gateway.runtime import open_runtime
from gateway.services.accounts import AccountView
from gateway.wiring import Services
from tests.harness import TOKEN_SECRET

T = TypeVar("T")

PASSWORD = "long enough and rare 7"


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("GATEWAY_CONFIG", "LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite3")
    monkeypatch.setenv("GATEWAY_TOKENS_SECRET_KEYS", TOKEN_SECRET)
    monkeypatch.setenv("GATEWAY_SERVER_PUBLIC_URL", "https://pay.example.org")
    monkeypatch.setenv("GATEWAY_STRIPE_API_BASE", "http://127.0.0.1:9")
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def services(call: Callable[[Services], Awaitable[T]]) -> T:
    """``call(services)`` on the same database, as the web console would run it."""

    async def go() -> T:
        async with open_runtime(load_settings(None)) as rt:
            return await call(rt.services)

    return asyncio.run(go())


def accept(token: str, password: str = PASSWORD) -> AccountView:
    return services(lambda s: s.accounts.accept(token, password))


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_add_prints_a_one_time_link_that_sets_the_password(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "users", "add", "--email", "Ana@Club.example", "--role", "ADMIN", "--name", "Ana"
    )
    assert code == 0, err
    lines = out.splitlines()
    assert "ana@club.example added as admin" in lines[0]
    assert "One-time link for ana@club.example" in lines[1]
    url = lines[2]
    assert url.startswith("https://pay.example.org/admin/invitation/")
    view = services(lambda s: s.accounts.accept(token_of(url), PASSWORD))
    assert view.status == "active" and view.role.value == "admin"
    # Once only.
    with pytest.raises(Exception, match="used"):
        services(lambda s: s.accounts.accept(token_of(url), PASSWORD))
    code, out, _ = run(capsys, "users", "list", "--json")
    assert code == 0
    [row] = json.loads(out)
    assert (row["email"], row["role"], row["status"], row["created_by"]) == (
        "ana@club.example",
        "admin",
        "active",
        "cli",
    )
    assert PASSWORD not in out


def test_list_disable_enable_reset_and_role(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for email, role in (("ana@club.example", "admin"), ("bea@club.example", "treasurer")):
        code, out, err = run(capsys, "users", "add", "--email", email, "--role", role, "--json")
        assert code == 0, err
        data = json.loads(out)
        assert data["account"]["role"] == role and data["purpose"] == "invite"
        accept(token_of(data["url"]))
    code, out, _ = run(capsys, "users", "list")
    assert code == 0
    assert "ana@club.example" in out and "bea@club.example" in out and "treasurer" in out
    assert (
        out.splitlines()[0].split()[:5] == ["ID", "EMAIL", "NAME", "ROLE", "STATUS"]
        or "EMAIL" in out
    )

    cookie = services(
        lambda s: s.console_auth.login("bea@club.example", PASSWORD, client="c", user_agent="")
    ).cookie
    code, out, err = run(capsys, "users", "disable", "bea@club.example")
    assert code == 0, err
    assert "bea@club.example disabled" in out
    assert services(lambda s: s.console_auth.resume(cookie)) is None
    code, out, _ = run(capsys, "users", "list", "--json")
    assert {r["email"]: r["status"] for r in json.loads(out)}["bea@club.example"] == "disabled"
    code, out, _ = run(capsys, "users", "reset", "bea@club.example")
    assert code == 1  # a disabled account gets no reset link
    assert run(capsys, "users", "enable", "bea@club.example")[0] == 0

    code, out, err = run(capsys, "users", "reset", "bea@club.example")
    assert code == 0, err
    url = out.splitlines()[1]
    assert url.startswith("https://pay.example.org/admin/reset/")
    services(lambda s: s.accounts.accept(token_of(url), "a new long sentence 8"))

    code, out, _ = run(capsys, "users", "role", "bea@club.example", "admin")
    assert code == 0 and "bea@club.example is now admin" in out
    assert run(capsys, "users", "role", "ana@club.example", "viewer")[0] == 0
    # Bea is the last admin now.
    code, _, err = run(capsys, "users", "role", "bea@club.example", "viewer")
    assert code == 1 and "last active admin" in err
    code, _, err = run(capsys, "users", "disable", "bea@club.example")
    assert code == 1 and "last active admin" in err


def test_bad_input_exits_2_and_writes_nothing(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "users", "add", "--email", "not-an-email", "--role", "boss")
    assert code == 2
    assert "email" in err and "role" in err and "unknown role" in err
    code, _, err = run(capsys, "users", "role", "nobody@club.example", "viewer")
    assert code == 1 and "not found" in err
    code, out, _ = run(capsys, "users", "list", "--json")
    assert json.loads(out) == []
    assert run(capsys, "users", "add", "--email", "a@club.example", "--role", "viewer")[0] == 0
    code, _, err = run(capsys, "users", "add", "--email", "A@club.example", "--role", "viewer")
    assert code == 2 and "already exists" in err
