"""The messages the outbox sends, one composer per kind (gateway.domain.outbox.Kind): each
builds its email from the rows as they are when it is sent, in the link's language."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.services.outbox import Composer


def composers() -> Mapping[str, Composer]:
    """Every kind's composer (the wiring hands them to the outbox)."""
    return {}
