"""Packed confirm pages (issue 10 items 12 and 21): the page a GET composes from a link's packed
form is byte for byte the page the template renders, and a large organisation's links fit in
the packed snapshot's byte budget."""

from __future__ import annotations

import dataclasses
import tracemalloc
from datetime import UTC, datetime
from typing import Any

import jinja2
import pytest

from gateway.app import create_app
from gateway.domain.checkout import LinkFacts, LinkState, OrderFacts
from gateway.domain.locales import OFFERED
from gateway.domain.orders import OrderStatus
from gateway.i18n.formats import Formats
from gateway.services.checkout import ItemView, LinkView
from gateway.services.snapshots import SnapshotCache
from gateway.visitors.inapp import IN_APP
from gateway.web import pay
from gateway.web.pages import PAGES, TOKEN_MARK, Pages
from gateway.web.payable import (
    APP_MARK,
    INFLATED_BYTES,
    LONG_WAY,
    PagesByLocale,
    PayablePages,
    link_locale,
    replaced_stretch,
    valid_until,
)
from tests import harness
from tests.unit.test_bounded_cache import retained

UNTIL = datetime(2030, 6, 1, tzinfo=UTC)
TOKENS = (
    "lk_AbCdEfGhIjKl.ZxYwVu.abcdefghijklmnopqrstuvwxyz0",
    "lk_-_-_-_-_-_-_.AAAA.___________________________",
    '<never "verified" & yet> escaped as Jinja would',
)


@pytest.fixture(scope="module")
def pages() -> Pages:
    settings = harness.test_settings(
        "sqlite+aiosqlite:////nonexistent/unused.db", "http://127.0.0.1:9"
    )
    return create_app(settings, auto_migrate=False, background_tasks=False)[PAGES]


def packer(pages: Pages, **options: Any) -> PayablePages[LinkView]:
    return PayablePages(
        pages,
        SnapshotCache(ttl=1.0),
        template="confirm.html",
        context=pay.confirm_context,
        payable_until=pay._payable_until,
        locale_of=lambda view: view.locale,
        default_locale="en",
        sample=pay._sample_view(),
        **options,
    )


def view(**changes: Any) -> LinkView:
    return dataclasses.replace(pay._sample_view(), valid_until=UNTIL, **changes)


FAILED = OrderFacts(
    id="or_failed",
    status=OrderStatus.FAILED,
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
    session_id="cs_test_failed",
)

VIEWS = {
    "sample": view(),
    "markup in every field": view(
        name='<script>alert("x")</script> & O\'Brien',
        description="Fees <b>&amp;</b> \"dues\" 'n' more",
        items=(ItemView("<i>Camp</i> & lunch", 12345, 3),),
        amount_total=37035,
    ),
    "unicode": view(
        name="Zoë Þórsdóttir 山田", description="Saison d'été — équipe", currency="eur"
    ),
    "zero-decimal currency": view(currency="jpy", amount_total=5000),
    "many items": view(
        items=tuple(ItemView(f"Item {i}", 100 * i + 1, i % 3 + 1) for i in range(40))
    ),
    "a failed bank debit": view(
        facts=LinkFacts(revoked=False, valid_until=UNTIL, orders=(FAILED,))
    ),
}


@pytest.mark.parametrize("many_links", [False, True])  # pages kept inflated, or not
@pytest.mark.parametrize("name", VIEWS)
@pytest.mark.parametrize("in_app", [None, *sorted({row.app for row in IN_APP})])
@pytest.mark.parametrize("locale", [None, *OFFERED])
def test_a_packed_page_is_the_rendered_page(
    pages: Pages, name: str, in_app: str | None, many_links: bool, locale: str | None
) -> None:
    payable = packer(pages)
    assert payable.packing
    if many_links:
        payable._inflated_links = -1
    link = dataclasses.replace(VIEWS[name], locale=locale)
    packed = payable.pack(link)
    assert valid_until(packed) == UNTIL.timestamp()
    # The page is in the link's own language, else the default; the entry knows which.
    assert link_locale(packed) == locale
    assert payable.page_locale(packed) == (locale or "en")
    for token in TOKENS:
        context = pay.confirm_context(link, token, in_app)
        rendered = pages.render_bytes("confirm.html", context, locale or "en")
        assert payable.body(packed, token, in_app) == rendered


def test_a_link_that_goes_the_long_way_still_knows_its_language(pages: Pages) -> None:
    packed = packer(pages).pack(view(state=LinkState.PAID, locale="pt-BR"))
    assert valid_until(packed) == LONG_WAY
    assert link_locale(packed) == "pt-BR"


def test_a_packed_page_keeps_the_end_of_its_validity(pages: Pages) -> None:
    assert valid_until(packer(pages).pack(view())) == UNTIL.timestamp()


def test_a_link_that_is_not_payable_goes_the_long_way(pages: Pages) -> None:
    payable = packer(pages)
    assert valid_until(payable.pack(view(state=LinkState.PAID))) == LONG_WAY
    assert valid_until(payable.pack(view(state=LinkState.EXPIRED))) == LONG_WAY


def test_a_link_whose_own_words_contain_a_stand_in_goes_the_long_way(pages: Pages) -> None:
    payable = packer(pages)
    assert valid_until(payable.pack(view(description=f"see {TOKEN_MARK}"))) == LONG_WAY
    assert valid_until(payable.pack(view(name=APP_MARK))) == LONG_WAY


def test_a_template_that_does_not_compose_turns_packing_off(pages: Pages) -> None:
    # The token through a filter that changes it: stand-ins would no longer be found.
    env = jinja2.Environment(
        loader=jinja2.DictLoader({"confirm.html": "{{ token | upper }} {{ in_app or '' }}"}),
        autoescape=True,
    )
    odd = Pages(dict.fromkeys(OFFERED, env), {})
    payable = PayablePages(
        odd,
        SnapshotCache(ttl=1.0),
        template="confirm.html",
        context=pay.confirm_context,
        payable_until=pay._payable_until,
        locale_of=lambda view: view.locale,
        default_locale="en",
        sample=pay._sample_view(),
    )
    assert not payable.packing


async def test_a_large_organisations_links_stay_within_the_packed_budget(pages: Pages) -> None:
    budget = 128 << 10
    payable = packer(pages, max_bytes=budget)
    links = [
        view(id=f"lk_{i:012d}", name=f"Parent {i}", amount_total=10_000 + i) for i in range(1000)
    ]

    async def fill() -> None:
        for link in links:

            async def load(link: LinkView = link) -> LinkView:
                return link

            await payable.get(link.id, load)

    tracemalloc.start()
    try:
        await fill()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    snapshot = payable.snapshot
    assert snapshot.bytes <= budget and held <= budget * 1.1
    # ~260 bytes a link (a rendered page alone is ~1 KB): about 500 of the 1,000 fit.
    assert 450 <= snapshot.count < 1000


def test_preview_pages_for_any_number_of_tokens_keep_nothing(pages: Pages) -> None:
    tokens = [f"lk_{i:012d}.AAAAAA.{i:027d}" for i in range(5000)]

    def previews() -> None:
        for token in tokens:
            body = pages.render_for_token("preview.html", token, locale="en").body
            assert isinstance(body, bytes) and token.encode() in body

    assert retained(previews) < 64 * 1024  # the preview's parts, rendered once


def test_cached_pages_are_held_to_their_byte_budget_under_unique_keys() -> None:
    env = jinja2.Environment(loader=jinja2.DictLoader({"big.html": "{{ text }}"}), autoescape=True)
    budget = 256 * 1024
    cached = Pages({"en": env}, {}, max_entries=100_000, max_bytes=budget)

    def fill() -> Pages:
        for i in range(2000):
            key = f"{i:06d}" + "k" * 2000  # an outsider's key, as long as it likes
            cached.render("big.html", {"text": "x" * 4000}, locale="en", cache_key=key)
        return cached

    assert retained(fill) <= budget * 1.1


async def test_pages_kept_inflated_are_let_go_once_there_are_many_links(pages: Pages) -> None:
    payable = packer(pages)
    payable._inflated_links = 10
    links = [view(id=f"lk_{i:012d}", name=f"Parent {i}") for i in range(3)]
    packed = []
    for link in links:

        async def load(link: LinkView = link) -> LinkView:
            return link

        found = await payable.get(link.id, load)
        assert found is not None
        packed.append(found)
        payable.body(found, TOKENS[0], None)
    assert len(payable._inflated) >= 3  # the few are kept inflated (the check's sample too)
    payable._inflated_links = 2  # now there are more links than it keeps
    for link, entry in zip(links, packed, strict=True):
        for in_app in (None, "Facebook"):
            rendered = pages.render_bytes(
                "confirm.html", pay.confirm_context(link, TOKENS[0], in_app), "en"
            )
            assert payable.body(entry, TOKENS[0], in_app) == rendered
            assert len(payable._inflated) == 0


@pytest.mark.parametrize(
    ("plain", "other"),
    [
        (b"<p>pay</p>", b"<p>pay</p>"),  # nothing replaced
        (b"<p>pay</p>", b"<p>hint</p><p>pay</p>"),  # an insertion at the start
        (b"<p>pay</p>", b"<p>pay</p><p>hint</p>"),  # ... at the end
        (b"ab<form>cd", b"ab<p>in app</p><form>cd"),  # ... in the middle
        (b"aaaa", b"aaaaaa"),  # the common start and end would overlap
        (b"aaaaaa", b"aaaa"),  # a removal, the same way round
        (b"head A mid B tail", b"head X mid Y tail"),  # two changes: one stretch spans both
        (b"", b"anything"),
        (b"anything", b""),
    ],
)
def test_the_in_app_variant_is_the_plain_page_with_one_stretch_replaced(
    plain: bytes, other: bytes
) -> None:
    start, end, replacement = replaced_stretch(plain, other)
    assert plain[:start] + replacement + plain[end:] == other
    assert 0 <= start <= end <= len(plain)
    # The shortest: the stretch starts and ends where the two first and last differ.
    assert len(replacement) <= len(other) and plain[:start] == other[:start]


async def test_an_organisations_ten_thousand_pages_all_stay_inflated(pages: Pages) -> None:
    """The natural instance's budget keeps every page of 10,000 links inflated (what a GET
    would otherwise inflate each time: design §8's 10,000-link row), in its byte budget."""
    payable = packer(pages)
    assert payable._inflated_links >= 10_000
    sample = payable.pack(view())
    size = len(payable.body(sample, TOKENS[0], "Facebook")) + 100
    assert size * 10_000 <= INFLATED_BYTES


def test_each_languages_pages_are_made_at_its_first_request(pages: Pages) -> None:
    made: list[str] = []

    def make(locale: str) -> PayablePages[LinkView]:
        made.append(locale)
        return packer(pages, fixed_locale=locale)

    by_locale = PagesByLocale(make)
    assert made == []
    spanish = by_locale["es"]
    assert by_locale["es"] is spanish and made == ["es"]
    assert spanish.page_locale(spanish.pack(view())) == "es"
    with pytest.raises(KeyError):
        by_locale["xx"]
    assert made == ["es"]


def test_a_language_is_checked_when_its_first_page_is_packed(pages: Pages) -> None:
    payable = packer(pages)
    assert payable.composes == {"en": True}  # the default's, at start
    payable.pack(view(locale="fr"))
    assert payable.composes == {"en": True, "fr": True}
    # Another instance of the template shares the results: nothing is checked twice.
    shared = packer(pages, fixed_locale="fr", composes=payable.composes)
    assert shared.packing and shared.composes is payable.composes


def test_a_language_whose_pages_do_not_compose_is_rendered_directly(pages: Pages) -> None:
    good = jinja2.Environment(
        loader=jinja2.DictLoader({"confirm.html": "{{ token }} {{ in_app or '' }}"}),
        autoescape=True,
    )
    odd = jinja2.Environment(
        loader=jinja2.DictLoader({"confirm.html": "{{ token | upper }} {{ in_app or '' }}"}),
        autoescape=True,
    )
    mixed = Pages({**dict.fromkeys(OFFERED, good), "fr": odd}, {})
    payable = PayablePages(
        mixed,
        SnapshotCache(ttl=1.0),
        template="confirm.html",
        context=pay.confirm_context,
        payable_until=pay._payable_until,
        locale_of=lambda view: view.locale,
        default_locale="en",
        sample=pay._sample_view(),
    )
    assert payable.packing
    assert valid_until(payable.pack(view(locale="es"))) == UNTIL.timestamp()
    assert valid_until(payable.pack(view(locale="fr"))) == LONG_WAY  # rendered per request
    assert payable.composes["fr"] is False


def test_a_locales_cldr_data_is_read_at_its_first_use() -> None:
    formats = Formats("pt-BR", "UTC")
    assert formats._locale is None
    assert formats.money(15000, "usd") == "US$\xa0150,00"
    assert formats._locale is not None
