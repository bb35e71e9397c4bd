"""gateway.domain.locales: which language a payer reads, and which one Stripe's page gets."""

from __future__ import annotations

import pytest

from gateway.domain.locales import (
    DEFAULT,
    MAX_HEADER_CHARS,
    NATIVE_NAMES,
    OFFERED,
    UnknownLocale,
    choose,
    for_link,
    from_accept_language,
    offered,
    parse_locale,
    stripe_locale,
)


def test_the_four_languages_are_offered_each_named_in_itself() -> None:
    assert OFFERED == ("en", "es", "pt-BR", "fr")
    assert DEFAULT in OFFERED
    assert set(NATIVE_NAMES) == set(OFFERED)
    assert NATIVE_NAMES["pt-BR"] == "Português"


class TestOffered:
    @pytest.mark.parametrize(
        ("tag", "expected"),
        [
            ("en", "en"),
            ("ES", "es"),
            ("pt-BR", "pt-BR"),
            ("pt-br", "pt-BR"),
            ("PT_BR", "pt-BR"),
            ("pt_BR", "pt-BR"),
            ("Fr", "fr"),
        ],
    )
    def test_an_offered_tag_in_any_case_or_separator(self, tag: str, expected: str) -> None:
        assert offered(tag) == expected

    @pytest.mark.parametrize(
        "tag", [None, "", "pt", "pt-PT", "es-MX", "en-US", "de", "fr ", " fr", "x" * 100, "*"]
    )
    def test_anything_else_is_none_no_prefix_matching_here(self, tag: str | None) -> None:
        assert offered(tag) is None


class TestParseLocale:
    @pytest.mark.parametrize(
        ("typed", "stored"), [("pt_br", "pt-BR"), (" es ", "es"), ("FR", "fr"), ("en", "en")]
    )
    def test_what_an_admin_types_is_stored_in_its_canonical_form(
        self, typed: str, stored: str
    ) -> None:
        assert parse_locale(typed) == stored

    @pytest.mark.parametrize("typed", ["", "pt", "pt-PT", "de", "english", "x" * 10_000])
    def test_an_unknown_locale_is_an_error_naming_the_offered_ones(self, typed: str) -> None:
        with pytest.raises(UnknownLocale) as caught:
            parse_locale(typed)
        message = str(caught.value)
        assert "offered: en, es, pt-BR, fr" in message
        assert caught.value.given == typed
        assert len(message) < 120  # an echo of the input is cut short
        assert isinstance(caught.value, ValueError)


class TestFromAcceptLanguage:
    @pytest.mark.parametrize(
        ("header", "expected"),
        [
            ("es", "es"),
            ("pt-BR,pt;q=0.9,en-US;q=0.8,en;q=0.7", "pt-BR"),
            # q-values order the ranges, not their position
            ("fr;q=0.5, es;q=0.8", "es"),
            ("en;q=0.1, de, fr;q=0.9", "fr"),
            # ties keep the header's order
            ("fr, es", "fr"),
            ("es;q=0.7, fr;q=0.7", "es"),
            # spaces around the parameter, and parameters that are not q
            ("es ; q = 0.5", "es"),
            ("fr;level=1", "fr"),
            # q=0 means "not this"
            ("es;q=0, fr", "fr"),
            ("es;q=0", None),
            ("es;q=0.000", None),
            ("es;q=0.001", "es"),
            # "*" says nothing about which language
            ("*", None),
            ("*, fr;q=0.1", "fr"),
            # a language prefix, or another region, reads the offered variant
            ("pt-PT", "pt-BR"),
            ("pt", "pt-BR"),
            ("es-MX", "es"),
            ("es-419", "es"),
            ("en-GB", "en"),
            ("fr-CA;q=0.9, de", "fr"),
            ("pt-PT;q=0, pt-BR;q=0.5", "pt-BR"),
            # nothing offered
            ("de-DE, de;q=0.9, ja;q=0.8", None),
            ("", None),
            (None, None),
        ],
    )
    def test_the_preferred_offered_language(self, header: str | None, expected: str | None) -> None:
        assert from_accept_language(header) == expected

    @pytest.mark.parametrize(
        "header",
        [
            "es;q=abc",
            "es;q=2",
            "es;q=-1",
            "es;q=1e999",
            "es;q=nan",
            ";;;,,,",
            "q=1",
            "\x00\xff",
            "é",
            ",,,;q=1",
            "🇧🇷",
        ],
    )
    def test_malformed_values_count_as_no_preference(self, header: str) -> None:
        assert from_accept_language(header) is None

    def test_a_malformed_range_does_not_hide_a_good_one(self) -> None:
        assert from_accept_language("es;q=abc, fr;q=0.3") == "fr"
        assert from_accept_language(";;q=1,, pt-PT") == "pt-BR"

    def test_a_10_kb_header_is_read_only_up_to_the_bound(self) -> None:
        filler = "xx-YY;q=0.5, " * 800  # about 10 KB of ranges nothing matches
        assert len(filler) > 10_000
        assert from_accept_language(filler + "es") is None  # beyond the bound: never read
        assert from_accept_language("es;q=0.2, " + filler) == "es"
        huge = "es;q=0." + "1" * 10_000  # one huge q-value, read to its first digits
        assert from_accept_language(huge) == "es"
        assert len(filler) > MAX_HEADER_CHARS

    def test_only_the_first_sixteen_ranges_are_read(self) -> None:
        fifteen = ", ".join(["de"] * 15)
        assert from_accept_language(f"{fifteen}, fr") == "fr"
        assert from_accept_language(f"{fifteen}, ja, fr") is None


class TestChoose:
    def test_the_payers_choice_comes_first(self) -> None:
        assert choose(choice="fr", link_locale="es", browser="pt-BR", default="en") == "fr"

    def test_then_the_links_locale(self) -> None:
        assert choose(choice=None, link_locale="es", browser="pt-BR", default="en") == "es"

    def test_then_the_browser(self) -> None:
        assert choose(choice=None, link_locale=None, browser="pt-BR", default="en") == "pt-BR"

    def test_then_the_default(self) -> None:
        assert choose(choice=None, link_locale=None, browser=None, default="fr") == "fr"

    def test_a_choice_or_link_locale_not_offered_is_passed_over(self) -> None:
        assert choose(choice="xx", link_locale="de", browser="es", default="en") == "es"
        assert choose(choice="", link_locale="pt-PT", browser=None, default="en") == "en"

    def test_a_choice_is_read_in_any_case(self) -> None:
        assert choose(choice="PT_br", link_locale="es", browser=None, default="en") == "pt-BR"


class TestForLink:
    def test_the_links_locale_else_the_default(self) -> None:
        assert for_link("es", "en") == "es"
        assert for_link("pt_br", "en") == "pt-BR"
        assert for_link(None, "fr") == "fr"
        assert for_link("de", "fr") == "fr"
        assert for_link("", "en") == "en"


@pytest.mark.parametrize(
    ("locale", "sent"),
    [
        # the four offered: Stripe has each of them as it is
        ("en", "en"),
        ("es", "es"),
        ("pt-BR", "pt-BR"),
        ("fr", "fr"),
        # other values Checkout accepts pass unchanged
        ("auto", "auto"),
        ("es-419", "es-419"),
        ("zh-TW", "zh-TW"),
        # anything Checkout would refuse becomes "auto" (Stripe follows the browser)
        ("pt-PT", "auto"),
        ("pt_BR", "auto"),
        ("pt-br", "auto"),
        ("en-US", "auto"),
        ("ku", "auto"),
        ("", "auto"),
    ],
)
def test_stripe_locale(locale: str, sent: str) -> None:
    assert stripe_locale(locale) == sent
