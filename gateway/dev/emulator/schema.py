"""Which parameters each endpoint accepts: Stripe answers anything else with a 400
``parameter_unknown`` ("Received unknown parameter: line_items[0][price_data][colour]"), so a
typo in the gateway fails its tests here instead of in production.

The lists are Stripe's own (API reference, 2025), not only what the emulator models: a
parameter Stripe knows is accepted even if the emulator ignores it. Nested objects the gateway
sends are checked key by key; those it never sends (``automatic_tax``, ``subscription_data``…)
are accepted whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from gateway.dev.emulator.errors import StripeError


class _Anything:
    """A scalar, or an object whose keys are not checked (free-form or not modelled)."""


ANY = _Anything()


@dataclass(frozen=True)
class ArrayOf:
    item: Spec


Spec: TypeAlias = Mapping[str, "Spec"] | ArrayOf | _Anything


def _known(names: str, **nested: Spec) -> dict[str, Spec]:
    spec: dict[str, Spec] = dict.fromkeys(names.split(), ANY)
    spec.update(nested)
    return spec


EXPAND = ArrayOf(ANY)
_RANGE = _known("gt gte lt lte")
_PAGE = _known("ending_before limit starting_after", expand=EXPAND)

_PRICE_DATA = _known(
    "currency product recurring tax_behavior unit_amount unit_amount_decimal",
    product_data=_known("description images metadata name tax_code unit_label"),
)
_LINE_ITEM = _known(
    "adjustable_quantity dynamic_tax_rates metadata price quantity tax_rates",
    price_data=_PRICE_DATA,
)
_PAYMENT_INTENT_DATA = _known(
    "application_fee_amount capture_method description metadata on_behalf_of receipt_email "
    "setup_future_usage shipping statement_descriptor statement_descriptor_suffix "
    "transfer_data transfer_group"
)

CREATE_SESSION = _known(
    "adaptive_pricing after_expiration allow_promotion_codes automatic_tax "
    "billing_address_collection branding_settings cancel_url client_reference_id "
    "consent_collection currency custom_fields custom_text customer customer_account "
    "customer_creation customer_email customer_update discounts excluded_payment_method_types "
    "expires_at invoice_creation locale metadata mode name_collection optional_items "
    "origin_context payment_method_collection payment_method_configuration payment_method_data "
    "payment_method_options payment_method_types permissions phone_number_collection "
    "redirect_on_completion return_url saved_payment_method_options setup_intent_data "
    "shipping_address_collection shipping_options submit_type subscription_data success_url "
    "tax_id_collection ui_mode wallet_options",
    expand=EXPAND,
    line_items=ArrayOf(_LINE_ITEM),
    payment_intent_data=_PAYMENT_INTENT_DATA,
)
LIST_SESSIONS = _known(
    "customer customer_account customer_details payment_intent payment_link status subscription",
    created=_RANGE,
    **_PAGE,
)
LIST_LINE_ITEMS = _PAGE
RETRIEVE = _known("", expand=EXPAND)
RETRIEVE_PAYMENT_INTENT = _known("client_secret", expand=EXPAND)
CREATE_REFUND = _known(
    "amount charge currency customer instructions_email metadata origin payment_intent reason "
    "refund_application_fee reverse_transfer",
    expand=EXPAND,
)
LIST_REFUNDS = _known("charge payment_intent", created=_RANGE, **_PAGE)
LIST_PAYMENT_INTENTS = _known("customer customer_account", created=_RANGE, **_PAGE)
LIST_EVENTS = _known("delivery_success type types", created=_RANGE, **_PAGE)


def check_known(value: Any, spec: Spec, prefix: str = "") -> None:
    """Raise Stripe's ``parameter_unknown`` error for the first parameter ``spec`` lacks.
    Values of the wrong shape are left to the handlers, which say what is wrong with them."""
    if isinstance(spec, ArrayOf):
        if isinstance(value, list):
            for index, item in enumerate(value):
                check_known(item, spec.item, f"{prefix}[{index}]")
        return
    if isinstance(spec, _Anything) or not isinstance(value, dict):
        return
    for name, inner in value.items():
        full = f"{prefix}[{name}]" if prefix else name
        if name not in spec:
            raise StripeError.invalid(
                f"Received unknown parameter: {full}", param=full, code="parameter_unknown"
            )
        check_known(inner, spec[name], full)
