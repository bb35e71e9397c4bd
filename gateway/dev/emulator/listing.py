"""Stripe's list endpoints: ``created`` range filters and cursor pagination, newest first."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gateway.dev.emulator import objects
from gateway.dev.emulator.errors import StripeError
from gateway.dev.emulator.params import Params, get_int, get_str

Obj = dict[str, Any]

_RANGE_OPS: dict[str, Callable[[int, int], bool]] = {
    "gt": lambda created, bound: created > bound,
    "gte": lambda created, bound: created >= bound,
    "lt": lambda created, bound: created < bound,
    "lte": lambda created, bound: created <= bound,
}


def created_filter(params: Params) -> Callable[[Obj], bool]:
    """``created=123`` or ``created[gte]=…&created[lt]=…``."""
    raw = params.get("created")
    if raw is None or raw == "":
        return lambda obj: True
    if isinstance(raw, str):
        exact = get_int(params, "created")
        return lambda obj: bool(obj["created"] == exact)
    if not isinstance(raw, dict):
        raise StripeError.invalid("Invalid created filter.", param="created")
    checks: list[tuple[Callable[[int, int], bool], int]] = []
    for op in raw:
        if op not in _RANGE_OPS:
            raise StripeError.invalid(
                f"Received unknown parameter: created[{op}]", param=f"created[{op}]"
            )
        bound = get_int(raw, op)
        assert bound is not None
        checks.append((_RANGE_OPS[op], bound))
    return lambda obj: all(check(obj["created"], bound) for check, bound in checks)


def paginate(
    newest_first: Sequence[Obj], keep: Callable[[Obj], bool], params: Params, *, url: str
) -> Obj:
    """Apply ``limit``/``starting_after``/``ending_before`` to the objects ``keep`` accepts.

    The cursor is looked up among all objects, not only the kept ones: an object whose status
    changed between two pages (an open session that expired) must not break pagination.
    """
    limit = get_int(params, "limit")
    if limit is None:
        limit = 10
    if not 1 <= limit <= 100:
        raise StripeError.invalid(
            "Invalid limit: must be between 1 and 100",
            param="limit",
            code="parameter_invalid_integer",
        )
    starting_after = get_str(params, "starting_after")
    ending_before = get_str(params, "ending_before")
    if starting_after and ending_before:
        raise StripeError.invalid(
            "You may only specify one of these parameters: ending_before, starting_after.",
            param="ending_before",
        )
    if starting_after:
        after = _position(newest_first, starting_after, "starting_after") + 1
        rest = [obj for obj in newest_first[after:] if keep(obj)]
        page, has_more = rest[:limit], len(rest) > limit
    elif ending_before:
        before = _position(newest_first, ending_before, "ending_before")
        rest = [obj for obj in newest_first[:before] if keep(obj)]
        # The page closest to the cursor, still newest first.
        page, has_more = rest[-limit:], len(rest) > limit
    else:
        kept = [obj for obj in newest_first if keep(obj)]
        page, has_more = kept[:limit], len(kept) > limit
    return objects.list_object(page, has_more=has_more, url=url)


def _position(items: Sequence[Obj], cursor: str, param: str) -> int:
    for index, item in enumerate(items):
        if item["id"] == cursor:
            return index
    raise StripeError.invalid(f"Invalid {param} id: no such object: '{cursor}'.", param=param)
