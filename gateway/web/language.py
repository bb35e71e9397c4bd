"""The payer's language on each request (the rules are gateway.domain.locales'): read from the
switcher (``?lang=``, then its cookie), the link, ``Accept-Language`` and the default.

The switcher is plain links (``?lang=es``), so it works without JavaScript. Choosing a language
answers the page in it and remembers the choice in a cookie scoped to that link's path
(``/pay/<token>``): it follows the payer to the Pay button, Stripe and the return page, and no
other link. The cookie changes nothing else about the answer: every page already sends
``Cache-Control: no-store`` and ``Vary: Accept-Language, Cookie``.

A request with no query, no cookie and no ``Accept-Language`` costs a dict lookup; a header is
parsed once per distinct value (bounded). Anything unreadable is "no preference".
"""

from __future__ import annotations

from aiohttp import web

from gateway.domain.locales import MAX_HEADER_CHARS, choose, from_accept_language, offered

COOKIE = "lang"
QUERY = "lang"
COOKIE_MAX_AGE = 366 * 86400  # as long as a link can live (tokens.max_age's ceiling)
_REMEMBER = web.RequestKey("remember_locale", str)
_HEADER_CACHE_ENTRIES = 512


class Languages:
    """How this app picks a page's language (one per app)."""

    def __init__(self, default: str, *, secure_cookie: bool) -> None:
        self.default = default
        self._secure = secure_cookie
        self._accept: dict[str, str | None] = {}

    def _from_header(self, header: str | None) -> str | None:
        if not header:
            return None
        key = header[:MAX_HEADER_CHARS]
        try:
            return self._accept[key]
        except KeyError:
            found = from_accept_language(key)
            if len(self._accept) >= _HEADER_CACHE_ENTRIES:
                self._accept.clear()  # crafted headers filled it; real browsers send a handful
            self._accept[key] = found
            return found

    def for_request(self, request: web.Request, link_locale: str | None = None) -> str:
        """The page's locale. A valid ``?lang=`` is also remembered (see :func:`remember`)."""
        choice = None
        if request.query_string:
            asked = offered(request.query.get(QUERY))
            if asked is not None:
                request[_REMEMBER] = asked
                return asked
        if "Cookie" in request.headers:
            choice = offered(request.cookies.get(COOKIE))
        return choose(
            choice=choice,
            link_locale=link_locale,
            browser=self._from_header(request.headers.get("Accept-Language")),
            default=self.default,
        )

    def remember(self, request: web.Request, response: web.StreamResponse) -> None:
        """Set the switcher's cookie on the answer to a ``?lang=`` choice (on a link's pages)."""
        if not request.query_string:
            return  # no choice made (most requests: this skips a lookup that raises KeyError)
        chosen = request.get(_REMEMBER)
        token = request.match_info.get("token")
        if chosen is None or token is None:
            return
        response.set_cookie(
            COOKIE,
            chosen,
            path=f"/pay/{token}",
            max_age=COOKIE_MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=self._secure,
        )


LANGUAGES = web.AppKey("languages", Languages)
