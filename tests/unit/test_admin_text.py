"""Messages an admin reads, built in the domain as :class:`Text` and translated at the edges:
a Text is its English message (every caller, join and log line reads as before), keeps its
template and values for the catalogs, and ``localize`` gives it in a language with the values
exactly as given. Also the CLI's language from the POSIX environment, and terminal widths."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from gateway.cli.common import cli_locale, pad, width
from gateway.config import CheckoutSettings, Settings
from gateway.domain.errors import ValidationFailed
from gateway.domain.links import validate_new_link
from gateway.domain.locales import OFFERED, UnknownLocale, from_posix_environment
from gateway.domain.money import AmountError, to_minor
from gateway.domain.text import Text, message_of
from gateway.i18n import catalogs, localize, translate
from gateway.i18n.maintenance import extract

AMBIGUOUS_ONE = (
    "%(amount)s is ambiguous (did you mean %(reading)s?): write digits with a dot for "
    "decimals, e.g. 1500.00 (a comma only between thousands, and only with a dot "
    "decimal part: 1,500.00)"
)


def refusal(amount: str, currency: str = "usd") -> str:
    with pytest.raises(AmountError) as caught:
        to_minor(amount, currency)
    return message_of(caught.value)


def link_errors(**changes: Any) -> dict[str, str]:
    fields: dict[str, Any] = {
        "email": "ana@example.com",
        "name": "Ana",
        "description": "",
        "currency": "usd",
        "items": ["Fee=150.00"],
        "ref": "r1",
        "valid_for": 86400.0,
        "max_valid_for": 90 * 86400.0,
        **changes,
    }
    with pytest.raises(ValidationFailed) as caught:
        validate_new_link(**fields)
    return caught.value.errors


class TestText:
    def test_its_string_is_the_english_message_and_it_keeps_template_and_values(self) -> None:
        text = Text("not an email address: %(email)s", email="'ana@'")
        assert text == str(text) == "not an email address: 'ana@'"
        assert text.template == "not an email address: %(email)s"
        assert dict(text.params) == {"email": "'ana@'"}
        assert "; ".join([text, "more"]) == "not an email address: 'ana@'; more"

    def test_a_message_without_values_is_its_template(self) -> None:
        assert Text("at least one item is required") == "at least one item is required"

    def test_an_exception_keeps_its_text(self) -> None:
        exc = AmountError(Text("amount must be positive, got %(amount)s", amount="'-1'"))
        assert isinstance(message_of(exc), Text)
        assert str(exc) == "amount must be positive, got '-1'"
        assert message_of(ValueError("plain")) == "plain"

    def test_pickled_it_stays_a_text(self) -> None:
        text = pickle.loads(pickle.dumps(Text("row %(row)s", row=3)))  # noqa: S301
        assert isinstance(text, Text) and text == "row 3" and text.template == "row %(row)s"

    def test_the_domain_errors_read_as_before_in_english(self) -> None:
        assert refusal("150,00") == (
            "'150,00' is ambiguous (did you mean 150.00?): write digits with a dot for decimals,"
            " e.g. 1500.00 (a comma only between thousands, and only with a dot decimal part: "
            "1,500.00)"
        )
        assert refusal("1,500") == (
            "'1,500' is ambiguous (did you mean 1.50 or 1500.00?): write digits with a dot for "
            "decimals, e.g. 1500.00 (a comma only between thousands, and only with a dot decimal"
            " part: 1,500.00)"
        )
        assert refusal("12.345", "kwd") == (
            "12.345 KWD: Stripe charges KWD with at most two decimals (the third must be 0)"
        )
        errors = link_errors(email="nope", items=[], locale="de")
        assert errors["email"] == "not an email address: 'nope'"
        assert errors["items"] == "at least one item is required"
        assert errors["locale"] == "unknown locale 'de'; offered: en, es, pt-BR, fr"
        assert all(isinstance(problem, Text) for problem in errors.values())
        assert isinstance(message_of(UnknownLocale("xx")), Text)


class TestLocalize:
    def test_a_plain_string_passes_through(self) -> None:
        assert localize("es", "gateway-checkout-1") == "gateway-checkout-1"

    def test_english_is_the_message_itself(self) -> None:
        text = Text("not an email address: %(email)s", email="'x'")
        assert localize("en", text) == text

    @pytest.mark.parametrize("locale", OFFERED)
    def test_a_text_reads_through_the_locales_catalog(self, locale: str) -> None:
        text = Text("the same ref as row %(row)s", row=7)
        assert localize(locale, text) == translate(locale, text.template) % {"row": 7}

    @pytest.mark.parametrize("locale", OFFERED)
    def test_a_refused_amount_is_named_exactly_as_typed_in_every_language(
        self, locale: str
    ) -> None:
        for typed in ("150,00", "1.500,00", "1,500", "12,5 €"):
            shown = localize(locale, refusal(typed, "eur"))
            assert repr(typed) in shown, (locale, shown)
        shown = localize(locale, refusal("150,00"))
        assert shown == translate(locale, AMBIGUOUS_ONE) % {
            "amount": "'150,00'",
            "reading": "150.00",
        }

    def test_a_text_inside_a_text_is_translated_too(self) -> None:
        inner = Text("unnamed")
        outer = Text("row %(row)s: the %(column)s cell is longer than %(size)s KB", row=2,
                     column=inner, size=64)  # fmt: skip
        assert localize("fr", outer) == translate(
            "fr", "row %(row)s: the %(column)s cell is longer than %(size)s KB"
        ) % {"row": 2, "column": translate("fr", "unnamed"), "size": 64}

    def test_a_translation_whose_placeholders_do_not_fit_falls_back_to_english(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(catalogs, "translate", lambda locale, message: "%(other)s!")
        text = Text("the same ref as row %(row)s", row=7)
        assert localize("es", text) == "the same ref as row 7"

    def test_texts_are_extracted_for_the_catalogs(self) -> None:
        ids = {m.id for m in extract() if isinstance(m.id, str)}
        assert {
            "not an email address: %(email)s",
            AMBIGUOUS_ONE,
            "unknown locale %(given)s; offered: %(offered)s",
            "invalid input",
            "Link %(id)s created",
            "the same ref as row %(row)s",
        } <= ids


class TestCliLocale:
    @pytest.mark.parametrize(
        ("environ", "expected"),
        [
            ({"LANG": "pt_BR.UTF-8"}, "pt-BR"),
            ({"LANG": "es_ES.UTF-8"}, "es"),
            ({"LANG": "fr_CA.UTF-8@euro"}, "fr"),
            ({"LANG": "pt_PT.UTF-8"}, "pt-BR"),
            ({"LC_ALL": "fr_FR.UTF-8", "LANG": "es_ES.UTF-8"}, "fr"),
            ({"LC_MESSAGES": "es_MX.UTF-8", "LANG": "fr_FR.UTF-8"}, "es"),
            ({"LANGUAGE": "de:fr", "LANG": "es_ES.UTF-8"}, "fr"),
            ({"LANGUAGE": "", "LANG": "es_ES.UTF-8"}, "es"),
            # The locale in force is German: not offered, and LANG is not consulted under it.
            ({"LC_ALL": "de_DE.UTF-8", "LANG": "es_ES.UTF-8"}, None),
            ({"LANG": "C.UTF-8"}, None),
            ({"LANG": "POSIX"}, None),
            ({}, None),
        ],
    )
    def test_from_posix_environment(self, environ: dict[str, str], expected: str | None) -> None:
        assert from_posix_environment(environ) == expected

    def test_else_the_configured_default(self) -> None:
        french = Settings(checkout=CheckoutSettings(default_locale="fr"))
        assert cli_locale(french, {"LANG": "C.UTF-8"}) == "fr"
        assert cli_locale(french, {"LANG": "es_ES.UTF-8"}) == "es"
        assert cli_locale(None, {}) == "en"


def test_terminal_widths_count_what_a_terminal_shows() -> None:
    composed, decomposed = "AÇÕES", "AC\u0327O\u0303ES"
    assert width(composed) == width(decomposed) == 5
    assert width("料金") == 4
    assert pad(decomposed, 7) == decomposed + "  "
