"""The console under test: the real app (tests.admin.support's harness, so the JSON API and
mail work as well), accounts made through the services, and one HTTP client per logged-in
person, each with its own cookie jar."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from gateway.domain.accounts import Role
from gateway.web.keys import ACCOUNTS
from tests.admin.support import AdminHarness

PASSWORD = "long enough and rare 7"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def token_of(url: str) -> str:
    """The token at the end of an invitation or reset URL."""
    return url.rstrip("/").rsplit("/", 1)[1]


@dataclass
class ConsoleClient:
    """A browser-like client of one person: its own cookies, and the CSRF token of its session
    sent with every POST (as the console's forms do)."""

    client: TestClient[Any, Any]
    email: str
    csrf_token: str = ""

    async def get(self, path: str, **kwargs: Any) -> ClientResponse:
        return await self.client.get(_console(path), **kwargs)

    async def page(self, path: str) -> str:
        response = await self.get(path)
        assert response.status == 200, (path, response.status, await response.text())
        return await response.text()

    async def refresh_csrf(self) -> str:
        self.csrf_token = csrf_of(await self.page("/account"))
        return self.csrf_token

    async def post(
        self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True, **kwargs: Any
    ) -> ClientResponse:
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf", self.csrf_token or await self.refresh_csrf())
        kwargs.setdefault("allow_redirects", False)
        return await self.client.post(_console(path), data=form, **kwargs)


def _console(path: str) -> str:
    return path if path.startswith("/admin") else "/admin" + path


class ConsoleHarness(AdminHarness):
    async def add_account(
        self,
        email: str,
        role: Role | str = Role.TREASURER,
        *,
        password: str = PASSWORD,
        name: str = "",
    ) -> str:
        """An active account (invited and accepted through the services); its id."""
        accounts = self.app[ACCOUNTS]
        invitation = await accounts.add(email, Role(role), name=name, actor="test")
        await accounts.accept(token_of(invitation.url), password)
        return str(invitation.account.id)

    async def new_client(self) -> TestClient[Any, Any]:
        """Another client of the same server, with a cookie jar of its own."""
        client: TestClient[Any, Any] = TestClient(self.client.server)
        await client.start_server()
        self._extra_clients.append(client)
        return client

    async def login(self, email: str, password: str = PASSWORD) -> ConsoleClient:
        client = await self.new_client()
        response = await client.post(
            "/admin/login", data={"email": email, "password": password}, allow_redirects=False
        )
        assert response.status == 303, (response.status, await response.text())
        person = ConsoleClient(client, email)
        await person.refresh_csrf()
        return person

    async def as_role(self, role: Role | str, email: str | None = None) -> ConsoleClient:
        """A logged-in person with ``role`` (an account made for the purpose)."""
        email = email or f"{Role(role).value}@riverside.example"
        await self.add_account(email, role)
        return await self.login(email)

    async def close_clients(self) -> None:
        for client in self._extra_clients:
            await client.close()

    @property
    def _extra_clients(self) -> list[TestClient[Any, Any]]:
        found: list[TestClient[Any, Any]] | None = getattr(self, "_clients", None)
        if found is None:
            found = []
            self._clients = found
        return found
