"""The confirm page of every payable link, packed small enough to keep a large organisation's
links all in memory (docs/design.md §8: a GET spread over 100,000 links).

A rendered confirm page is about a kilobyte and a link's full view as much again: 100,000 of
either do not fit in a sane budget, and a GET that misses pays the database and Jinja (~300 µs).
So the GET path keeps, per link, in a sibling of the link snapshot (one invalidation, one change
feed, one freshness rule with it):

- a payable link: its confirm page rendered once per change with stand-ins for the only two
  things a request changes (the token, and the name of the app whose in-app browser asks). The
  in-app variant is the plain one with one stretch replaced (the "you are in the app" hint):
  the plain page and that stretch are compressed together by zlib against a dictionary made of
  the same template rendered for a sample link, and where the stretch goes is noted. The
  template's own text is the shared part, so what is stored is the link's own words: ~50-100
  bytes. With it, the moment its validity ends, the one change that no write announces;
- any other link: a header whose validity end is :data:`LONG_WAY` (minus infinity), which sends
  the request the long way (the full view from the snapshot, and the page for its state).

Each entry is one ``bytes`` that also carries when its load started, so the snapshot keeps no
pair per link: with its key and the dict's share, ~260 bytes a link, 26 MB for 100,000.

Languages (issue 13): an entry also carries the link's own locale (the issuer's choice, or
none), which a request needs to choose its page's language before anything else (a bot preview
too). The packed page is the one in the link's locale, else the default: what most requests get.
A request that chooses another language (the switcher, a browser asking for another offered
language on a link without one) is served from another instance with a ``fixed_locale``: a
sibling of the same snapshot (one invalidation for all), holding the pages of just the links
someone has asked for in that language.

A request inflates its page (~2 µs; an in-app browser's, the stretch too) and puts the escaped
token and app name in. While an organisation's links all fit in :data:`INFLATED_BYTES` (~10,000
links), their pages are kept inflated after their first request: that is most of what a GET
costs here beyond aiohttp. A larger one inflates per request (its pages would only churn).

Before the first page is packed in a language (the default's at start-up, any other the first
time a page is asked for in it: a language nobody reads is never loaded), a sample page is
checked to compose byte for byte what rendering the template directly gives, for every in-app
browser the classifier names; a template that breaks the rule (passes the token or the app name
through a filter that changes them, or branches on which app it is) switches packing off in
that language, and its pages are rendered directly: slower, never wrong. A link whose own text
contains a stand-in is not packed either.
"""

from __future__ import annotations

import logging
import struct
import sys
import zlib
from collections.abc import Awaitable, Callable
from typing import Any, Final, Generic, TypeVar

from aiohttp import web
from markupsafe import escape

from gateway.bounded import BoundedCache
from gateway.domain.locales import OFFERED, for_link
from gateway.memory import release_freed_memory
from gateway.services.snapshots import SnapshotCache
from gateway.visitors.inapp import IN_APP
from gateway.web.pages import TOKEN_MARK, TOKEN_MARK_BYTES, Pages, token_bytes

log = logging.getLogger(__name__)

V = TypeVar("V")

# Stands in for the in-app browser's name (what the page says: "You are in the Facebook app").
APP_MARK = "InAppxMARKxAppName"
_APP_MARK_BYTES = APP_MARK.encode("ascii")
# A packed page: when its load started (the snapshot's clock), its validity end (seconds since
# the epoch; minus infinity for a link that goes the long way), the length of the plain variant,
# the stretch of it the in-app variant replaces (start, end), the link's locale (0: none; else
# its place in OFFERED plus one), then the plain variant and the in-app stretch, deflated (none
# for the long way).
_HEAD = struct.Struct(">ddIIIB")
_LOCALE_CODES = {locale: n for n, locale in enumerate(OFFERED, 1)}
# Raw deflate (no header or checksum to store per link) with a 4 KB window: the dictionary
# (~2.5 KB) and a page fit in it, and setting up a small window is what a request pays for.
_WBITS = -12


def _weigh(packed: bytes) -> int:
    return sys.getsizeof(packed)


def _weigh_inflated(packed: bytes, pages: bytes) -> int:
    return sys.getsizeof(pages)  # the key is the snapshot's entry, counted there


def _loaded_at(packed: bytes) -> float:
    at: float = _HEAD.unpack_from(packed)[0]
    return at


def valid_until(packed: bytes) -> float:
    """Until when the packed page may be served; minus infinity: go the long way."""
    until: float = _HEAD.unpack_from(packed)[1]
    return until


def link_locale(packed: bytes) -> str | None:
    """The link's own locale (None: the issuer chose none)."""
    code = packed[_HEAD.size - 1]  # the head's last field
    return OFFERED[code - 1] if code else None


LONG_WAY: Final = float("-inf")
# What the natural instance keeps inflated at most (see the module's docstring): a page and its
# in-app stretch are ~2 KB, so this keeps every page of an organisation of up to ~10,000 links.
INFLATED_BYTES: Final = 24 << 20


def _common_prefix(a: bytes, b: bytes) -> int:
    """How many bytes ``a`` and ``b`` start with in common (compared a slice at a time)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def replaced_stretch(plain: bytes, other: bytes) -> tuple[int, int, bytes]:
    """``other`` as ``plain`` with one stretch replaced: ``(start, end, replacement)`` such that
    ``plain[:start] + replacement + plain[end:] == other`` (the shortest such stretch)."""
    start = _common_prefix(plain, other)
    room = min(len(plain), len(other)) - start  # the common end may not overlap the start
    common_end = min(_common_prefix(plain[::-1], other[::-1]), room)
    return start, len(plain) - common_end, other[start : len(other) - common_end]


class PayablePages(Generic[V]):
    """Confirm pages of payable links, packed in a sibling of the link snapshot.

    ``context(view, token, in_app)`` is the template's context, exactly as the handler renders
    it; ``payable_until(view)`` the time the view stops being payable by itself (its validity
    end), or None when it is not payable now; ``locale_of(view)`` the link's own locale.
    ``sample`` is a typical payable view: the dictionary the pages are compressed against, and
    the start-up check (in every locale), are made from it.
    """

    def __init__(
        self,
        pages: Pages,
        snapshots: SnapshotCache[Any],
        *,
        template: str,
        context: Callable[[V, str, str | None], dict[str, Any]],
        payable_until: Callable[[V], float | None],
        locale_of: Callable[[V], str | None],
        default_locale: str,
        sample: V,
        max_entries: int = 200_000,
        max_bytes: int = 32 << 20,
        inflated_bytes: int = INFLATED_BYTES,
        fixed_locale: str | None = None,
        packing: bool | None = None,
        composes: dict[str, bool] | None = None,
    ) -> None:
        self._pages = pages
        self._template = template
        self._context = context
        self._payable_until = payable_until
        self._locale_of = locale_of
        self.default_locale = default_locale
        # Every page in this language, whatever the link's own (None: the link's, else the
        # default's).
        self.fixed_locale = fixed_locale
        self._snapshot: SnapshotCache[bytes] = snapshots.sibling(
            max_entries=max_entries, max_bytes=max_bytes, weigh=_weigh, stamped_at=_loaded_at
        )
        self._app_names: dict[str, bytes] = {}
        self._sample = sample
        none, app = self._variants(sample, fixed_locale or default_locale)
        self._zdict = none + app
        stretch = replaced_stretch(none, app)[2]
        # How many links' pages it holds (a page, its stretch, and what a cache entry costs).
        self._inflated_links = inflated_bytes // (len(none) + len(stretch) + 200)
        self._inflated: BoundedCache[bytes, bytes] = BoundedCache(
            max(1, self._inflated_links), inflated_bytes, weigh=_weigh_inflated
        )
        # How often each stand-in appears on a page; a link whose own words add one is not packed.
        self._marks = (none.count(TOKEN_MARK_BYTES), app.count(_APP_MARK_BYTES))
        # Whether the template composes from its stand-ins, by locale: checked the first time a
        # page is packed in a locale (a language nobody reads is never loaded); ``composes``
        # given: shared with the other instances of the same template.
        self._composes: dict[str, bool] = {} if composes is None else composes
        # ``packing`` given: another instance of the same template already checked it.
        if packing is not None:
            self._composes.setdefault(fixed_locale or default_locale, packing)
        self.packing = self._composes_in(fixed_locale or default_locale)
        if not self.packing:
            log.warning(
                "%s does not compose from its stand-ins; confirm pages are rendered per request",
                template,
            )

    def _variants(self, view: V, locale: str) -> tuple[bytes, bytes]:
        render = self._pages.render_bytes
        return (
            render(self._template, self._context(view, TOKEN_MARK, None), locale),
            render(self._template, self._context(view, TOKEN_MARK, APP_MARK), locale),
        )

    def _composes_in(self, locale: str) -> bool:
        """Whether pages packed in ``locale`` compose byte for byte as rendered (checked once)."""
        found = self._composes.get(locale)
        if found is None:
            self._composes[locale] = True  # while checking: the check packs a page itself
            found = self._composes[locale] = self._composes_as_rendered(self._sample, locale)
            if not found and locale != (self.fixed_locale or self.default_locale):
                log.warning(
                    "%s does not compose from its stand-ins in %s; its pages in %s are "
                    "rendered per request",
                    self._template,
                    locale,
                    locale,
                )
        return found

    def _composes_as_rendered(self, sample: V, locale: str) -> bool:
        token = "lk_Sample-Link_.AbCd12.abcdefghijklmnopqrstuvwxyz_"  # noqa: S105 - a sample
        packed = self._pack(sample, locale, None, 0.0)
        if valid_until(packed) == LONG_WAY:
            return False
        for in_app in (None, *sorted({row.app for row in IN_APP})):
            rendered = self._pages.render_bytes(
                self._template, self._context(sample, token, in_app), locale
            )
            if self.body(packed, token, in_app) != rendered:
                return False
        return True

    def page_locale(self, packed: bytes) -> str:
        """The locale a packed page is in: the fixed one, else the link's own, else the
        default."""
        return self.fixed_locale or for_link(link_locale(packed), self.default_locale)

    def pack(self, view: V, loaded_at: float = 0.0) -> bytes:
        """The view's packed page, or a header saying "the long way" (:data:`LONG_WAY`)."""
        own = self._locale_of(view)
        locale = self.fixed_locale or for_link(own, self.default_locale)
        return self._pack(view, locale, own, loaded_at)

    def _pack(self, view: V, locale: str, own: str | None, loaded_at: float) -> bytes:
        code = _LOCALE_CODES.get(own, 0) if own else 0
        until = self._payable_until(view) if self._composes_in(locale) else None
        if until is None:
            return _HEAD.pack(loaded_at, LONG_WAY, 0, 0, 0, code)
        none, app = self._variants(view, locale)
        if (none.count(TOKEN_MARK_BYTES), app.count(_APP_MARK_BYTES)) != self._marks:
            return _HEAD.pack(loaded_at, LONG_WAY, 0, 0, 0, code)
        start, end, stretch = replaced_stretch(none, app)
        deflate = zlib.compressobj(9, zlib.DEFLATED, _WBITS, 1, zdict=self._zdict)
        head = _HEAD.pack(loaded_at, until, len(none), start, end, code)
        return head + deflate.compress(none + stretch) + deflate.flush()

    def fresh(self, link_id: str) -> bytes | None:
        """The link's packed page if the snapshot holds it fresh (no load, no coroutine)."""
        return self._snapshot.fresh(link_id)

    async def get(self, link_id: str, load: Callable[[], Awaitable[V | None]]) -> bytes | None:
        """The link's packed page (see :func:`valid_until`), or None for no such link."""

        async def load_packed() -> bytes | None:
            started = self._snapshot.now()  # before reading: what the entry's age counts from
            view = await load()
            return None if view is None else self.pack(view, started)

        return await self._snapshot.get(link_id, load_packed)

    def body(self, packed: bytes, token: str, in_app: str | None) -> bytes:
        """The page for this token and in-app browser (of a page :func:`valid_until` now)."""
        _, _, split, start, end, _ = _HEAD.unpack_from(packed)
        # The pages stay inflated (~3 µs saved a request) while they are all there is: with
        # many more links open, they would only churn through. The key is the snapshot's own
        # bytes object, so only the pages are counted.
        few = self._snapshot.count <= self._inflated_links
        pages = self._inflated.get(packed) if few else None
        if pages is None:
            inflate = zlib.decompressobj(_WBITS, zdict=self._zdict)
            if few:
                pages = inflate.decompress(memoryview(packed)[_HEAD.size :])
                self._inflated.put(packed, pages)
            else:
                if len(self._inflated):
                    # Past the few: what was kept inflated would only sit there (up to its
                    # budget); from now on each page is inflated per request.
                    self._inflated.clear()
                    release_freed_memory()  # megabytes of pages, or they stay counted in RSS
                if in_app is None:  # the plain variant only: no stretch to inflate
                    pages = inflate.decompress(memoryview(packed)[_HEAD.size :], split)
                else:
                    pages = inflate.decompress(memoryview(packed)[_HEAD.size :])
        if in_app is None:
            page = pages[:split]
        else:
            name = self._app_names.get(in_app)
            if name is None:
                name = str(escape(in_app)).encode("utf-8")
                if len(self._app_names) < 64:  # the classifier's apps: a short fixed list
                    self._app_names[in_app] = name
            stretch = pages[split:].replace(_APP_MARK_BYTES, name)
            page = b"".join((pages[:start], stretch, pages[end:split]))
        return page.replace(TOKEN_MARK_BYTES, token_bytes(token))

    @property
    def composes(self) -> dict[str, bool]:
        """The check's results by locale (shared by the instances of one template)."""
        return self._composes

    @property
    def snapshot(self) -> SnapshotCache[bytes]:
        return self._snapshot


class PagesByLocale:
    """The same pages in each offered language, for requests that ask for another than the
    link's: each language's instance made the first time a page is asked for in it (its
    dictionary rendered, its template compiled, its check run then), so a language nobody
    reads costs nothing."""

    __slots__ = ("_made", "_make")

    def __init__(self, make: Callable[[str], PayablePages[Any]]) -> None:
        self._make = make
        self._made: dict[str, PayablePages[Any]] = {}

    def __getitem__(self, locale: str) -> PayablePages[Any]:
        found = self._made.get(locale)
        if found is None:
            if locale not in _LOCALE_CODES:
                raise KeyError(locale)
            found = self._made[locale] = self._make(locale)
        return found


PAYABLE = web.AppKey("payable_pages", PayablePages[Any])
# The same pages in each offered language, for requests that ask for another than the link's.
PAYABLE_IN = web.AppKey("payable_pages_by_locale", PagesByLocale)
