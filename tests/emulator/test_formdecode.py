"""The form decoder against what the SDK actually puts on the wire."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stripe._encode import _api_encode

from gateway.dev.emulator.errors import StripeError
from gateway.dev.emulator.formdecode import decode_form


def sdk_wire(params: dict[str, Any]) -> str:
    """Exactly what ``stripe._api_requestor`` sends as a v1 body or query string."""
    return urlencode(list(_api_encode(params))).replace("%5B", "[").replace("%5D", "]")


def test_checkout_session_params_round_trip() -> None:
    params = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": "eur",
                    "unit_amount": "4500",
                    "product_data": {"name": "Fee & jersey [size M] = 45€"},
                },
                "quantity": "1",
            },
            {"price_data": {"currency": "eur", "unit_amount": "10"}, "quantity": "3"},
        ],
        "metadata": {"order_id": "o-1", "ref": "2026-04/player-26"},
        "payment_intent_data": {"metadata": {"order_id": "o-1"}},
        "expand": ["payment_intent", "line_items"],
    }
    assert decode_form(sdk_wire(params)) == params


def test_query_string_filters_as_the_sdk_sends_them() -> None:
    wire = sdk_wire({"created": {"gte": 10, "lt": 20}, "limit": 3, "types": ["a.b", "c.d"]})
    assert wire == "created[gte]=10&created[lt]=20&limit=3&types[0]=a.b&types[1]=c.d"
    assert decode_form(wire) == {
        "created": {"gte": "10", "lt": "20"},
        "limit": "3",
        "types": ["a.b", "c.d"],
    }


def test_empty_brackets_append_like_stripe_list_urls() -> None:
    assert decode_form("expand[]=a&expand[]=b&types[]=x") == {"expand": ["a", "b"], "types": ["x"]}


def test_array_of_objects_with_empty_brackets() -> None:
    assert decode_form("items[][a]=1&items[][b]=2&items[][a]=3") == {
        "items": [{"a": "1", "b": "2"}, {"a": "3"}]
    }


def test_numeric_metadata_keys_stay_a_dict() -> None:
    assert decode_form("metadata[0]=zero&metadata[1]=one") == {
        "metadata": {"0": "zero", "1": "one"}
    }


def test_blank_values_are_kept() -> None:
    assert decode_form("metadata[k]=&customer_email=") == {
        "metadata": {"k": ""},
        "customer_email": "",
    }


@pytest.mark.parametrize(
    "body",
    [
        "a=1&a[b]=2",  # scalar then object
        "a[b]=2&a=1",  # object then scalar
        "a[0]=x&a[]=y",  # indexed then appended
        "a[b=1",  # unbalanced bracket
        "[a]=1",  # no name
        "a[0]=x&a[2]=y",  # hole in the array
    ],
)
def test_malformed_or_conflicting_keys_are_a_400(body: str) -> None:
    with pytest.raises(StripeError) as caught:
        decode_form(body)
    assert caught.value.status == 400
    assert caught.value.type == "invalid_request_error"


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="[]"),
    min_size=1,
    max_size=8,
)
_names = st.text(alphabet="abcdefghij_", min_size=1, max_size=6)
_values: st.SearchStrategy[Any] = st.recursive(
    _text,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3),
        st.dictionaries(_names, children, min_size=1, max_size=3),
    ),
    max_leaves=10,
)


@given(st.dictionaries(_names, _values, min_size=1, max_size=4))
def test_decoding_inverts_the_sdk_encoding(params: dict[str, Any]) -> None:
    assert decode_form(sdk_wire(params)) == params
