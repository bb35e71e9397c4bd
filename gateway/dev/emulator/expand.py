"""``expand[]``: replace id fields by the objects they name, on a copy of the response."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

from gateway.dev.emulator.errors import StripeError

Obj = dict[str, Any]
Resolver = Callable[[str], Obj | None]

MAX_DEPTH = 4  # Stripe's limit on expansion depth


def expand(obj: Obj, paths: Sequence[str], resolve: Resolver) -> Obj:
    if not paths:
        return obj
    result = copy.deepcopy(obj)
    for path in paths:
        parts = path.split(".")
        if len(parts) > MAX_DEPTH:
            raise StripeError.invalid(
                f"You cannot expand more than {MAX_DEPTH} levels of a property.", param="expand"
            )
        _expand_path(result, parts, resolve, path)
    return result


def expand_list(listing: Obj, paths: Sequence[str], resolve: Resolver) -> Obj:
    """On a list, Stripe expects ``data.<field>`` paths."""
    if not paths:
        return listing
    inner = []
    for path in paths:
        if not path.startswith("data."):
            raise StripeError.invalid(
                f"This property cannot be expanded ({path}). You may want to try expanding "
                f"'data.{path}' instead.",
                param="expand",
            )
        inner.append(path.removeprefix("data."))
    return {**listing, "data": [expand(item, inner, resolve) for item in listing["data"]]}


def _expand_path(obj: Obj, parts: list[str], resolve: Resolver, path: str) -> None:
    head, rest = parts[0], parts[1:]
    if head not in obj:
        raise StripeError.invalid(f"This property cannot be expanded ({path}).", param="expand")
    value = obj[head]
    if isinstance(value, str):
        target = resolve(value)
        if target is None:
            raise StripeError.invalid(f"This property cannot be expanded ({path}).", param="expand")
        value = copy.deepcopy(target)
        obj[head] = value
    if rest and isinstance(value, dict):
        _expand_path(value, rest, resolve, path)
