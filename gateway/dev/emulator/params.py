"""Typed access to decoded form parameters, failing with the errors Stripe gives."""

from __future__ import annotations

from typing import Any

from gateway.dev.emulator.errors import StripeError

Params = dict[str, Any]


def get_str(
    params: Params, name: str, *, required: bool = False, max_len: int = 5000
) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise StripeError.required(name)
        return None
    if not isinstance(value, str):
        raise StripeError.invalid(f"Invalid string: {name} must be a string.", param=name)
    if len(value) > max_len:
        raise StripeError.invalid(
            f"Invalid string: {value[:20]}...; must be at most {max_len} characters", param=name
        )
    return value


def get_int(
    params: Params, name: str, *, required: bool = False, minimum: int | None = None
) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise StripeError.required(name)
        return None
    try:
        number = int(value) if isinstance(value, str) else None
    except ValueError:
        number = None
    if number is None:
        raise StripeError.invalid(f"Invalid integer: {value}", param=name)
    if minimum is not None and number < minimum:
        raise StripeError.invalid(
            f"Invalid integer: {name} must be greater than or equal to {minimum}.", param=name
        )
    return number


def get_dict(params: Params, name: str) -> Params:
    value = params.get(name)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise StripeError.invalid(f"Invalid object: {name} must be a hash.", param=name)
    return value


def get_list(params: Params, name: str) -> list[Any]:
    value = params.get(name)
    if value is None or value == "":
        return []
    if not isinstance(value, list):
        raise StripeError.invalid(f"Invalid array: {name} must be an array.", param=name)
    return value


def get_metadata(params: Params, name: str = "metadata") -> dict[str, str]:
    """Stripe's limits: 50 keys, keys up to 40 characters, values up to 500; an empty value
    means "unset" so it is dropped."""
    raw = get_dict(params, name)
    if len(raw) > 50:
        raise StripeError.invalid("Metadata can have at most 50 keys.", param=name)
    metadata: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(value, str):
            raise StripeError.invalid(f"Invalid value for {name}[{key}].", param=f"{name}[{key}]")
        if len(key) > 40:
            raise StripeError.invalid(
                "Metadata keys can be at most 40 characters.", param=f"{name}[{key}]"
            )
        if len(value) > 500:
            raise StripeError.invalid(
                "Metadata values can be at most 500 characters.", param=f"{name}[{key}]"
            )
        if value != "":
            metadata[key] = value
    return metadata


def get_expand(params: Params) -> list[str]:
    return [str(item) for item in get_list(params, "expand")]
