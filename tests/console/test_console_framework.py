"""The console's shell (gateway.web.console.base): who gets in, what a POST must carry, what
every console answer says about itself."""

from __future__ import annotations

from yarl import URL

from gateway.web.middleware import redact_path
from tests.console.support import PASSWORD, ConsoleClient, ConsoleHarness


class TestWithoutASession:
    async def test_a_page_redirects_to_the_login_page_and_back(
        self, console: ConsoleHarness
    ) -> None:
        response = await console.client.get("/admin/links?status=paid", allow_redirects=False)

        assert response.status == 303
        location = URL(response.headers["Location"])
        assert location.path == "/admin/login"
        assert location.query["next"] == "/admin/links?status=paid"

    async def test_the_bare_prefix_leads_to_the_overview(self, console: ConsoleHarness) -> None:
        response = await console.client.get("/admin", allow_redirects=False)

        assert response.status == 301
        assert response.headers["Location"] == "/admin/"

    async def test_a_made_up_cookie_is_cleared_and_leads_to_login(
        self, console: ConsoleHarness
    ) -> None:
        response = await console.client.get(
            "/admin/", headers={"Cookie": "gw_console=" + "x" * 43}, allow_redirects=False
        )

        assert response.status == 303
        assert "notice=session_expired" in response.headers["Location"]
        assert 'gw_console=""' in response.headers["Set-Cookie"]

    async def test_an_oversized_cookie_is_not_looked_up(self, console: ConsoleHarness) -> None:
        response = await console.client.get(
            "/admin/", headers={"Cookie": "gw_console=" + "x" * 5000}, allow_redirects=False
        )

        assert response.status == 303


class TestLoggingIn:
    async def test_the_session_cookie_is_opaque_httponly_lax_and_scoped_to_the_console(
        self, console: ConsoleHarness
    ) -> None:
        await console.add_account("kim@riverside.example", "treasurer")
        client = await console.new_client()

        response = await client.post(
            "/admin/login",
            data={"email": "kim@riverside.example", "password": PASSWORD},
            allow_redirects=False,
        )

        assert response.status == 303
        cookie = response.cookies["gw_console"]
        assert cookie["httponly"]
        assert cookie["samesite"] == "Lax"
        assert cookie["path"] == "/admin"
        assert not cookie["secure"]  # public_url is http here; https sets it
        assert len(cookie.value) >= 40 and "kim" not in cookie.value

    async def test_next_may_only_lead_inside_the_console(self, console: ConsoleHarness) -> None:
        await console.add_account("kim@riverside.example", "treasurer")
        client = await console.new_client()

        response = await client.post(
            "/admin/login",
            data={
                "email": "kim@riverside.example",
                "password": PASSWORD,
                "next": "//evil.example/admin/",
            },
            allow_redirects=False,
        )

        assert response.headers["Location"] == "/admin/"


class TestEveryAnswer:
    async def test_console_pages_are_never_cached_framed_or_scripted_inline(
        self, treasurer: ConsoleClient
    ) -> None:
        response = await treasurer.get("/account")

        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Frame-Options"] == "DENY"
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp

    async def test_an_unknown_console_path_is_a_404_page(self, treasurer: ConsoleClient) -> None:
        response = await treasurer.get("/no-such-page")

        assert response.status == 404
        assert "Page not found" in await response.text()

    async def test_a_notice_is_one_of_the_known_sentences_or_nothing(
        self, treasurer: ConsoleClient
    ) -> None:
        shown = await treasurer.page("/account?notice=revoked")
        crafted = await treasurer.page("/account?notice=%3Cscript%3Ealert(1)")

        assert "The payment link has been revoked." in shown
        assert "alert(1)" not in crafted and 'role="status"' not in crafted


class TestStateChangingRequests:
    async def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
        self, treasurer: ConsoleClient
    ) -> None:
        response = await treasurer.post("/logout", csrf=False)

        assert response.status == 403
        assert "The form has expired" in await response.text()
        assert (await treasurer.get("/account")).status == 200  # still logged in

    async def test_a_post_with_another_sessions_token_is_refused(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        other = await console.as_role("viewer")

        response = await treasurer.post("/logout", {"csrf": other.csrf_token})

        assert response.status == 403
        assert (await treasurer.get("/account")).status == 200

    async def test_a_cross_site_post_is_refused_even_with_the_token(
        self, treasurer: ConsoleClient
    ) -> None:
        for headers in (
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},
            {"Origin": "https://evil.example"},
            {"Origin": "http://["},
            {"Origin": "http://[zz]"},
        ):
            response = await treasurer.post("/logout", headers=headers)

            assert response.status == 403, headers
        assert (await treasurer.get("/account")).status == 200

    async def test_the_consoles_own_forms_pass(self, treasurer: ConsoleClient) -> None:
        # What Chromium sends for a same-origin form on a no-referrer page.
        response = await treasurer.post(
            "/logout", headers={"Sec-Fetch-Site": "same-origin", "Origin": "null"}
        )

        assert response.status == 303
        assert (await treasurer.get("/account", allow_redirects=False)).status == 303

    async def test_a_script_may_send_the_token_as_a_header(self, treasurer: ConsoleClient) -> None:
        response = await treasurer.client.post(
            "/admin/logout",
            headers={"X-CSRF-Token": treasurer.csrf_token},
            allow_redirects=False,
        )

        assert response.status == 303


def test_invitation_and_reset_tokens_are_redacted_from_logged_paths() -> None:
    assert redact_path("/admin/invitation/abc.def") == "/admin/invitation/<token>"
    assert redact_path("/admin/reset/abc/x") == "/admin/reset/<token>/x"
    assert redact_path("/pay/lk_1.2/return") == "/pay/<token>/return"
    assert redact_path("/admin/links") == "/admin/links"
