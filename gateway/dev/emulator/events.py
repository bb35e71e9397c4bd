"""The event log: every state change becomes an immutable ``event`` snapshot, listed newest
first by ``GET /v1/events`` and handed to the webhook sender."""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Callable
from typing import Any

from gateway.dev.emulator import listing, objects
from gateway.dev.emulator.errors import StripeError
from gateway.dev.emulator.params import Params, get_list, get_str
from gateway.dev.emulator.store import RequestContext, Store

Obj = dict[str, Any]


class EventLog:
    def __init__(self, store: Store, on_event: Callable[[Obj], None]) -> None:
        self._store = store
        self._on_event = on_event
        self.events: list[Obj] = []
        self._by_id: dict[str, Obj] = {}

    def emit(self, type_: str, data_object: Obj, ctx: RequestContext) -> Obj:
        event = objects.event(
            id=self._store.ids.new("evt_"),
            created=self._store.now(),
            type=type_,
            # A snapshot: later changes to the object must not rewrite history.
            data_object=copy.deepcopy(data_object),
            request_id=ctx.request_id,
            idempotency_key=ctx.idempotency_key,
            pending_webhooks=0,
        )
        self.events.append(event)
        self._by_id[event["id"]] = event
        self._on_event(event)
        return event

    def get(self, event_id: str) -> Obj:
        try:
            return self._by_id[event_id]
        except KeyError:
            raise StripeError.missing("event", event_id) from None

    def list_page(self, params: Params) -> Obj:
        in_range = listing.created_filter(params)
        type_filter = get_str(params, "type")
        types = [str(t) for t in get_list(params, "types")]
        if type_filter and types:
            raise StripeError.invalid(
                "You may only specify one of these parameters: type, types.", param="types"
            )
        patterns = [type_filter] if type_filter else types

        def keep(event: Obj) -> bool:
            # Stripe accepts ``*`` wildcards in type filters (``checkout.session.*``).
            type_ok = not patterns or any(fnmatch.fnmatchcase(event["type"], p) for p in patterns)
            return type_ok and in_range(event)

        return listing.paginate(self.events[::-1], keep, params, url="/v1/events")
