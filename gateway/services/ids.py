"""Random, unguessable identifiers (safe to generate on several replicas at once)."""

from __future__ import annotations

import secrets


def new_link_id() -> str:
    return "lk_" + secrets.token_urlsafe(9)  # 12 URL-safe characters, 72 bits


def new_order_id() -> str:
    return "ord_" + secrets.token_urlsafe(12)


def new_message_id() -> str:
    return "ms_" + secrets.token_urlsafe(12)
