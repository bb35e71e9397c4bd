"""Decode Stripe's bracketed form encoding into nested dicts and lists.

The SDK flattens ``{"line_items": [{"price_data": {"currency": "eur"}}]}`` into
``line_items[0][price_data][currency]=eur`` (arrays always indexed), while hand-written clients
and Stripe's own list ``url`` fields use ``expand[]=x``. Both forms decode to the same tree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from gateway.dev.emulator.errors import StripeError

# Fields whose sub-keys are free-form strings chosen by the caller: ``metadata[0]=x`` is a
# dict entry, never list index 0.
FREE_FORM_DICTS = frozenset({"metadata"})

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


class _Appended(dict[str, Any]):
    """A node built from ``key[]`` appends; its keys are positions, so it is always a list."""


def decode_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        match = _KEY.match(raw_key)
        if match is None:
            raise StripeError.invalid(f"Invalid parameter name: {raw_key}", param=raw_key)
        parts = [match.group(1), *_PART.findall(match.group(2))]
        _insert(root, parts, value, raw_key)
    # The top level is always an object, even if a caller sends ``0=x``.
    return {key: _finish(v, key) if isinstance(v, dict) else v for key, v in root.items()}


def decode_form(body: str) -> dict[str, Any]:
    """Decode an ``application/x-www-form-urlencoded`` body or a query string."""
    try:
        pairs = parse_qsl(body, keep_blank_values=True, strict_parsing=False, errors="strict")
    except UnicodeDecodeError as exc:
        raise StripeError.invalid("Request body is not valid UTF-8.") from exc
    return decode_pairs(pairs)


def _insert(node: dict[str, Any], parts: list[str], value: str, raw_key: str) -> None:
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if part == "":
            # ``key[]``: append at this level; the position is the next free index.
            if depth == 0 or (node and not isinstance(node, _Appended)):
                raise StripeError.invalid(f"Invalid array parameter: {raw_key}", param=raw_key)
            part = str(len(node)) if last else _append_slot(node, parts[depth + 1 :])
        if last:
            if isinstance(node.get(part), dict):
                raise _conflict(raw_key)
            # A repeated scalar key: the last value wins, as in most form parsers.
            node[part] = value
            return
        child = node.get(part)
        if child is None:
            child = _Appended() if parts[depth + 1] == "" else {}
            node[part] = child
        elif not isinstance(child, dict) or (
            # ``a[0]=x`` then ``a[]=y``: mixing indexed and appended forms is ambiguous.
            parts[depth + 1] == "" and child and not isinstance(child, _Appended)
        ):
            raise _conflict(raw_key)
        node = child


def _append_slot(node: dict[str, Any], rest: list[str]) -> str:
    """For ``a[][b]=1&a[][c]=2`` Rack-style grouping: start a new element when the last one
    already has the sub-key, otherwise keep filling the last one."""
    if node:
        last_key = str(len(node) - 1)
        last = node[last_key]
        if isinstance(last, dict) and rest[0] not in last:
            return last_key
    return str(len(node))


def _conflict(raw_key: str) -> StripeError:
    return StripeError.invalid(
        f"Invalid parameter: {raw_key} conflicts with another parameter.", param=raw_key
    )


def _finish(node: dict[str, Any], parent_key: str) -> Any:
    out: dict[str, Any] = {}
    for key, value in node.items():
        out[key] = _finish(value, key) if isinstance(value, dict) else value
    keep_as_dict = parent_key in FREE_FORM_DICTS and not isinstance(node, _Appended)
    if out and not keep_as_dict and all(key.isdigit() for key in out):
        indices = sorted(int(key) for key in out)
        if indices != list(range(len(indices))):
            raise StripeError.invalid(f"Invalid array indices for {parent_key}.", param=parent_key)
        return [out[str(i)] for i in indices]
    return out
