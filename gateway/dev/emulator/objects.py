"""Builders for the JSON objects the emulator serves.

Each returns a plain dict with exactly the top-level keys of the matching real Stripe object
(``tests/fixtures/stripe/fixtures.json``); the contract test holds them to that. Values are what
a card payment in a hosted Checkout Session would produce, not the fixtures' placeholders.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

API_VERSION = "2026-10-28.endive"


def _address() -> Obj:
    return dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state"))


def checkout_session(
    *,
    id: str,
    created: int,
    expires_at: int,
    currency: str,
    amount: int,
    url: str,
    success_url: str | None,
    cancel_url: str | None,
    client_reference_id: str | None,
    customer_email: str | None,
    metadata: dict[str, str],
    locale: str | None,
    submit_type: str | None,
) -> Obj:
    return {
        "id": id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": amount,
        "amount_total": amount,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": cancel_url,
        "client_reference_id": client_reference_id,
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": created,
        "currency": currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": None,
        "customer_account": None,
        "customer_creation": "if_required",
        "customer_details": None,
        "customer_email": customer_email,
        "discounts": [],
        "expires_at": expires_at,
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": {
            "enabled": False,
            "invoice_data": {
                "account_tax_ids": None,
                "custom_fields": None,
                "description": None,
                "footer": None,
                "issuer": None,
                "metadata": {},
                "rendering_options": None,
            },
        },
        "livemode": False,
        "locale": locale,
        "managed_payments": {"enabled": False},
        "metadata": metadata,
        "mode": "payment",
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": submit_type,
        "subscription": None,
        "success_url": success_url,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": url,
        "wallet_options": None,
    }


def customer_details(email: str | None) -> Obj:
    return {
        "address": {**_address(), "country": "FR"},
        "business_name": None,
        "email": email,
        "individual_name": None,
        "name": "Emulated Payer",
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }


def payment_intent(
    *,
    id: str,
    created: int,
    amount: int,
    currency: str,
    metadata: dict[str, str],
    description: str | None,
    status: str,
    latest_charge: str | None,
    payment_method: str,
    method_type: str,
    receipt_email: str | None,
) -> Obj:
    return {
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": amount if status == "succeeded" else 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": f"{id}_secret_emulated",
        "confirmation_method": "automatic",
        "created": created,
        "currency": currency,
        "customer": None,
        "customer_account": None,
        "description": description,
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": latest_charge,
        "livemode": False,
        "managed_payments": None,
        "metadata": metadata,
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": payment_method,
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": [method_type],
        "processing": None,
        "receipt_email": receipt_email,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": status,
        "transfer_data": None,
        "transfer_group": None,
    }


def payment_method_details(method_type: str) -> Obj:
    if method_type == "card":
        return {
            "type": "card",
            "card": {
                "brand": "visa",
                "country": "US",
                "exp_month": 12,
                "exp_year": 2034,
                "fingerprint": "EmuLat0rFpr1nt42",
                "funding": "credit",
                "last4": "4242",
                "network": "visa",
                "three_d_secure": None,
                "wallet": None,
            },
        }
    # The "pay later" button stands for a delayed-notification method such as SEPA debit.
    return {
        "type": method_type,
        method_type: {"bank_code": "37040044", "country": "DE", "last4": "3000"},
    }


def charge(
    *,
    id: str,
    created: int,
    amount: int,
    currency: str,
    payment_intent: str,
    payment_method: str,
    method_type: str,
    metadata: dict[str, str],
    status: str,
    description: str | None,
    receipt_email: str | None,
    billing_email: str | None,
) -> Obj:
    succeeded = status == "succeeded"
    return {
        "id": id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount if succeeded else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": None,
        "billing_details": {
            "address": _address(),
            "email": billing_email,
            "name": "Emulated Payer",
            "phone": None,
            "tax_id": None,
        },
        "calculated_statement_descriptor": "EMULATOR",
        "captured": succeeded,
        "created": created,
        "currency": currency,
        "customer": None,
        "description": description,
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "fraud_details": {},
        "livemode": False,
        "metadata": metadata,
        "on_behalf_of": None,
        "outcome": {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
        "paid": succeeded,
        "payment_intent": payment_intent,
        "payment_method": payment_method,
        "payment_method_details": payment_method_details(method_type),
        "receipt_email": receipt_email,
        "receipt_number": None,
        "receipt_url": None,
        "refunded": False,
        "refunds": list_object([], has_more=False, url=f"/v1/charges/{id}/refunds"),
        "review": None,
        "shipping": None,
        "source": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": status,
        "transfer_data": None,
        "transfer_group": None,
    }


def refund(
    *,
    id: str,
    created: int,
    amount: int,
    currency: str,
    charge: str,
    payment_intent: str | None,
    metadata: dict[str, str],
    reason: str | None,
) -> Obj:
    return {
        "id": id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": None,
        "charge": charge,
        "created": created,
        "currency": currency,
        "customer": None,
        "customer_account": None,
        "destination_details": {"card": {"type": "refund"}, "type": "card"},
        "metadata": metadata,
        "payment_intent": payment_intent,
        "payment_method": None,
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }


def dispute(
    *, id: str, created: int, amount: int, currency: str, charge: str, payment_intent: str | None
) -> Obj:
    return {
        "id": id,
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": charge,
        "created": created,
        "currency": currency,
        "evidence": {},
        "evidence_details": {
            "due_by": created + 7 * 86400,
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": payment_intent,
        "reason": "fraudulent",
        "status": "needs_response",
    }


def event(
    *,
    id: str,
    created: int,
    type: str,
    data_object: Obj,
    request_id: str | None,
    idempotency_key: str | None,
    pending_webhooks: int,
) -> Obj:
    return {
        "id": id,
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": {"object": data_object},
        "livemode": False,
        "pending_webhooks": pending_webhooks,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": type,
    }


def list_object(data: list[Obj], *, has_more: bool, url: str) -> Obj:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}
