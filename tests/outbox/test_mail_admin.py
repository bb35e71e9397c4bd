"""People steering the outbox (issue 14 item 1): ``/admin/api/mail`` on SQLite and PostgreSQL and
``gateway mail`` on the command line, with a real SMTP sink and link emails (the production
composer): list with filters and pages, never a message's body; show with the payload; cancel
and retry following the states, a retry sending at once, both in the link's audit trail with
who asked; bad input a 4xx."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import unused_port
from aiosmtpd.controller import Controller

from gateway.cli import main
from tests.admin.support import OTHER_KEY, AdminHarness, start_admin_harness
from tests.admin.test_openapi import checked
from tests.harness import TOKEN_SECRET
from tests.outbox.support import RefusingSink

NEW = {"name": "Sam Rivera", "items": ["Spring fee=150.00"], "send": True}


@pytest.fixture
async def sink() -> AsyncIterator[RefusingSink]:
    server = RefusingSink()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def h(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str, sink: RefusingSink
) -> AdminHarness:
    return await start_admin_harness(
        aiohttp_server, aiohttp_client, database_url, smtp_port=sink.port
    )


async def create(h: AdminHarness, email: str, ref: str) -> dict[str, Any]:
    response = await h.api("POST", "/links", json={**NEW, "email": email, "ref": ref})
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


async def get(h: AdminHarness, path: str, **params: str) -> tuple[int, Any]:
    response = await h.api("GET", path, params=params)
    return response.status, await response.json()


async def post(h: AdminHarness, path: str, key: str | None = None) -> tuple[int, Any]:
    response = await h.api("POST", path, **({"key": key} if key else {}))
    return response.status, await response.json()


class TestApi:
    async def test_a_failed_send_is_canceled_then_retried_by_people_and_audited(
        self, h: AdminHarness, sink: RefusingSink
    ) -> None:
        port = sink.port
        await sink.stop()  # the server is down when the link is emailed
        created = await create(h, "sam@example.com", "r/1")
        assert created["email"]["sent"] is False
        status, page = await get(h, "/mail", link=created["id"])
        assert status == 200
        [listed] = page["messages"]
        assert (listed["kind"], listed["state"], listed["attempts"]) == ("link", "pending", 1)
        assert listed["recipient"] == "sam@example.com" and listed["last_error"]
        assert "payload" not in listed
        status, shown = await get(h, f"/mail/{listed['id']}")
        assert status == 200 and shown["payload"] == {"actor": "admin:treasurer"}
        path = f"/mail/{listed['id']}"

        # Pending: the sender will retry it; a person may cancel it, not retry it.
        status, body = await post(h, path + "/retry")
        assert (status, body["error"]["code"]) == (409, "wrong_state")
        status, body = await post(h, path + "/cancel")
        assert (status, body["state"]) == (200, "canceled")

        await sink.start(port=port)
        status, body = await post(h, path + "/retry", key=OTHER_KEY)
        assert (status, body["state"], body["attempts"]) == (200, "sent", 1), body
        assert sink.message_ids() == [shown["message_id"]]
        assert created["url"] in sink.messages[0].text()
        for action in ("/retry", "/cancel"):  # sent is sent
            status, body = await post(h, path + action)
            assert (status, body["error"]["code"]) == (409, "wrong_state")

        status, link = await get(h, f"/links/{created['id']}")
        assert link["email_delivery"]["sent_count"] == 1
        assert link["email_delivery"]["last_error"] is None
        trail = [(a["action"], a["actor"]) for a in link["audit"]]
        assert ("mail.canceled", "admin:treasurer") in trail
        assert ("mail.retried", "admin:auditor") in trail
        assert trail.count(("link.emailed", "admin:treasurer")) == 1
        metrics = await (await h.client.get("/metrics")).text()
        assert 'gateway_outbox_messages_total{kind="link",outcome="sent"} 1.0' in metrics

    async def test_lists_filter_and_page_newest_first_and_never_show_a_body(
        self, h: AdminHarness, sink: RefusingSink
    ) -> None:
        made = []
        for n in range(3):
            made.append(await create(h, f"p{n}@example.com", f"r/{n}"))
            h.clock.advance(1)
        refused = await create(h, "refused@example.com", "r/x")
        assert refused["email"]["sent"] is False and len(sink.messages) == 3

        status, page = await get(h, "/mail", limit="3")
        assert status == 200 and page["next_cursor"]
        status, rest = await get(h, "/mail", limit="3", cursor=page["next_cursor"])
        assert status == 200 and rest["next_cursor"] is None
        listed = page["messages"] + rest["messages"]
        expected = [refused["id"], *(m["id"] for m in reversed(made))]
        assert [m["link_id"] for m in listed] == expected  # newest first, each once
        # The link (and its token) is in every email; never in what people list or show.
        shown = [(await get(h, f"/mail/{m['id']}"))[1] for m in listed]
        for created in made:
            assert created["url"] not in json.dumps(page) + json.dumps(rest) + json.dumps(shown)

        _, failed = await get(h, "/mail", state="failed")
        [message] = failed["messages"]
        assert message["link_id"] == refused["id"] and "550" in message["last_error"]
        assert (await get(h, "/mail", kind="renewal"))[1]["messages"] == []
        _, one = await get(h, "/mail", link=made[1]["id"], kind="link", state="sent")
        assert [m["link_id"] for m in one["messages"]] == [made[1]["id"]]

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"state": "lost"}, "state"),
            ({"kind": "newsletter"}, "kind"),
            ({"link": "not-a-link"}, "link"),
            ({"limit": "0"}, "limit"),
            ({"limit": "201"}, "limit"),
            ({"cursor": "ms_AAAAAAAAAAAAAAAA"}, "cursor"),
            ({"cursor": "garbage"}, "cursor"),
        ],
    )
    async def test_bad_filters_are_a_422_naming_the_field(
        self, h: AdminHarness, params: dict[str, str], field: str
    ) -> None:
        status, body = await get(h, "/mail", **params)
        assert (status, body["error"]["code"]) == (422, "validation_failed")
        assert field in body["error"]["fields"]

    async def test_unknown_messages_are_a_404_and_a_key_is_needed(self, h: AdminHarness) -> None:
        for path in ("/mail/ms_AAAAAAAAAAAAAAAA", "/mail/nonsense", "/mail/lk_x"):
            status, body = await get(h, path)
            assert (status, body["error"]["code"]) == (404, "not_found")
            assert body["error"]["message"] == "no such message"
            for action in ("/retry", "/cancel"):
                status, body = await post(h, path + action)
                assert (status, body["error"]["code"]) == (404, "not_found")
        assert (await h.api("GET", "/mail", key=None)).status == 401

    async def test_answers_match_the_openapi_document(
        self, h: AdminHarness, sink: RefusingSink
    ) -> None:
        doc = await (await h.api("GET", "/openapi.json", key=None)).json()
        created = await create(h, "refused@example.com", "r/1")
        page = await checked(h, doc, "get", "/mail", "/mail", params={"link": created["id"]})
        path = f"/mail/{page['messages'][0]['id']}"
        await checked(h, doc, "get", path, "/mail/{id}")
        retried = await checked(h, doc, "post", path + "/retry", "/mail/{id}/retry")
        assert retried["state"] == "failed"  # refused again, at once
        assert (await checked(h, doc, "post", path + "/cancel", "/mail/{id}/cancel"))[
            "state"
        ] == "canceled"
        refused = await checked(h, doc, "post", path + "/cancel", "/mail/{id}/cancel")
        assert refused["error"]["code"] == "wrong_state"
        await checked(h, doc, "get", "/mail", "/mail", params={"state": "x"})
        await checked(h, doc, "get", "/mail/ms_AAAAAAAAAAAAAAAA", "/mail/{id}")

    async def test_a_retry_without_email_configured_is_refused(
        self, aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str
    ) -> None:
        h = await start_admin_harness(aiohttp_server, aiohttp_client, sqlite_url)
        status, body = await post(h, "/mail/ms_AAAAAAAAAAAAAAAA/retry")
        assert (status, body["error"]["code"]) == (409, "email_not_configured")
        assert (await get(h, "/mail"))[1]["messages"] == []


# --- gateway mail ------------------------------------------------------------------------------


@pytest.fixture
def smtp_port() -> int:
    return unused_port()


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_port: int) -> Path:
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite3")
    monkeypatch.setenv("GATEWAY_TOKENS_SECRET_KEYS", TOKEN_SECRET)
    monkeypatch.setenv("GATEWAY_SERVER_PUBLIC_URL", "https://pay.example.org")
    monkeypatch.setenv("GATEWAY_STRIPE_API_BASE", "http://127.0.0.1:9")  # never called here
    monkeypatch.setenv("GATEWAY_EMAIL_HOST", "127.0.0.1")
    monkeypatch.setenv("GATEWAY_EMAIL_PORT", str(smtp_port))
    monkeypatch.setenv("GATEWAY_EMAIL_FROM_ADDRESS", "treasurer@riverside.example")
    monkeypatch.setenv("GATEWAY_EMAIL_TIMEOUT", "5")
    return tmp_path


class SmtpThread:
    """The sink in a thread of its own (the CLI runs its own event loop), started on demand."""

    def __init__(self, port: int) -> None:
        self.sink = RefusingSink()
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=port)

    def __enter__(self) -> RefusingSink:
        self.controller.start()
        return self.sink

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


@pytest.fixture
def smtp(smtp_port: int) -> Iterator[RefusingSink]:
    with SmtpThread(smtp_port) as sink:
        yield sink


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def make_link(capsys: pytest.CaptureFixture[str], email: str) -> tuple[int, str]:
    code, out, _ = run(
        capsys, "links", "create", "--email", email, "--name", "A", "--item", "Fee=10.00",
        "--send", "--json",
    )  # fmt: skip
    return code, str(json.loads(out)["id"])


def only_message(capsys: pytest.CaptureFixture[str], link_id: str) -> dict[str, Any]:
    code, out, err = run(capsys, "mail", "list", "--link", link_id, "--json")
    assert code == 0, err
    [message] = json.loads(out)["messages"]
    return dict(message)


def trail(capsys: pytest.CaptureFixture[str], link_id: str) -> list[tuple[str, str]]:
    _, out, _ = run(capsys, "links", "show", link_id, "--json")
    return [(a["action"], a["actor"]) for a in json.loads(out)["audit"]]


class TestCli:
    def test_list_show_retry_and_cancel_a_refused_message(
        self, cli_env: Path, smtp: RefusingSink, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, link_id = make_link(capsys, "refused@example.com")
        assert code == 1  # the link exists; the email failed
        message = only_message(capsys, link_id)
        assert message["state"] == "failed" and "550" in message["last_error"]

        code, out, _ = run(capsys, "mail", "list", "--state", "failed")
        assert code == 0 and message["id"] in out and "refused@example.com" in out
        code, out, _ = run(capsys, "mail", "show", message["id"])
        assert code == 0 and message["message_id"] in out and '"actor": "cli"' in out
        code, out, _ = run(capsys, "mail", "show", message["id"], "--json")
        assert json.loads(out)["payload"] == {"actor": "cli"}

        code, _, err = run(capsys, "mail", "retry", message["id"])
        assert code == 1 and "failed" in err and "550" in err  # refused again, at once
        code, out, _ = run(capsys, "mail", "cancel", message["id"])
        assert code == 0 and "canceled" in out
        code, _, err = run(capsys, "mail", "cancel", message["id"])
        assert code == 2 and "canceled" in err
        assert smtp.messages == []
        assert {("mail.retried", "cli"), ("mail.canceled", "cli")} <= set(trail(capsys, link_id))

        code, _, err = run(capsys, "mail", "show", "ms_AAAAAAAAAAAAAAAA")
        assert code == 1 and "ms_AAAAAAAAAAAAAAAA" in err

    def test_a_send_that_failed_while_the_server_was_down_is_sent_by_a_retry(
        self, cli_env: Path, smtp_port: int, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, link_id = make_link(capsys, "sam@example.com")
        assert code == 1
        message = only_message(capsys, link_id)
        assert message["state"] == "pending"  # gateway serve would try again
        assert run(capsys, "mail", "cancel", message["id"])[0] == 0
        with SmtpThread(smtp_port) as sink:
            code, out, err = run(capsys, "mail", "retry", message["id"])
            assert code == 0, err
            assert f"{message['id']} sent to sam@example.com" in out
            assert sink.message_ids() == [message["message_id"]]
        code, out, _ = run(capsys, "links", "show", link_id, "--json")
        assert json.loads(out)["email_delivery"]["sent_count"] == 1
        code, out, _ = run(capsys, "mail", "list", "--limit", "1", "--json")
        assert json.loads(out)["next_cursor"] is None
