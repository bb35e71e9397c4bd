"""Admin API keys: configured by name, held only as SHA-256 digests, compared in constant time,
behind a per-client brake on refused keys.

``admin.api_keys`` entries are ``name:<64 hex digits>`` (the SHA-256 of the key, so the config
file never holds a usable secret) or ``name:<plain key>``, hashed here at start-up. The key's
name becomes the actor ``admin:<name>`` in the audit trail. Removing an entry from the config
revokes that key at the next start.

The brake: a client (see :mod:`gateway.web.clients`) whose keys were refused
``admin.max_failures`` times within ``admin.failure_window`` gets ``429`` with ``Retry-After``
until that window ends, whatever key it then presents (answering a right key would let guessing
go on). Refusals are logged at most once per client per :data:`LOG_EVERY` seconds, with a count,
and at most :data:`LOG_LINES_PER_MINUTE` lines a minute in all. The state is bounded: at most
:data:`MAX_CLIENTS` clients are remembered, the least recently refused forgotten first.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from gateway.clock import Clock
from gateway.config import ConfigError, Settings
from gateway.web.clients import ClientResolver

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,50}$")
_HEX_DIGEST = re.compile(r"^[0-9a-fA-F]{64}$")
# Not keys: a placeholder copied from an example (<...>, spaces), and digests of keys that were
# once printed in this project's documentation, which anyone can read.
_PLACEHOLDER = re.compile(r"[<>\s]")
_PUBLISHED_DIGESTS = frozenset({hashlib.sha256(b"test").hexdigest()})

MAX_CLIENTS = 10_000
LOG_EVERY = 60.0
LOG_LINES_PER_MINUTE = 100


@dataclass(frozen=True, slots=True)
class AdminKey:
    name: str
    digest: bytes


def digest_of(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def parse_keys(entries: Sequence[str]) -> tuple[AdminKey, ...]:
    keys: list[AdminKey] = []
    for entry in entries:
        name, sep, secret = entry.partition(":")
        name, secret = name.strip(), secret.strip()
        if not sep or not _NAME.match(name) or not secret:
            raise ConfigError(
                "admin.api_keys: each entry is name:sha256hex or name:key "
                "(name of letters, digits, '.', '_' or '-')"
            )
        if _PLACEHOLDER.search(secret):
            raise ConfigError(
                f"admin.api_keys: the key of {name!r} is a placeholder (it has <, > or spaces): "
                "put the SHA-256 hex of a real key there"
            )
        if secret.lower() in _PUBLISHED_DIGESTS:
            raise ConfigError(
                f"admin.api_keys: the key of {name!r} is a published example; make a new one"
            )
        digest = bytes.fromhex(secret) if _HEX_DIGEST.match(secret) else digest_of(secret)
        keys.append(AdminKey(name, digest))
    names = [k.name for k in keys]
    if len(set(names)) != len(names):
        raise ConfigError("admin.api_keys: two keys have the same name")
    return tuple(keys)


@dataclass(frozen=True, slots=True)
class Throttled:
    """Too many refused keys from this client: answer 429, try again in ``retry_after`` s."""

    retry_after: int


class _Client:
    __slots__ = ("failures", "logged_at", "throttled", "unlogged", "window_start")

    def __init__(self, now: float) -> None:
        self.window_start = now
        self.failures = 0  # refused keys in the current window
        self.unlogged = 0  # refused keys since the last line about this client
        self.throttled = 0  # 429s since the last line about this client
        self.logged_at = -math.inf


class FailureBrake:
    """Refused admin keys per client, on the injected clock (tests move time, never sleep)."""

    def __init__(
        self,
        clock: Clock,
        *,
        max_failures: int = 10,
        window: float = 60.0,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self._clock = clock
        self._max_failures = max_failures
        self._window = window
        self._max_clients = max_clients
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        # Counts of clients forgotten before their refusals were logged, for the next line.
        self._forgotten = 0
        self._lines_start = -math.inf
        self._lines = 0

    def __len__(self) -> int:
        return len(self._clients)

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or None if it may now."""
        entry = self._clients.get(client)
        if entry is None or entry.failures < self._max_failures:
            return None
        left = entry.window_start + self._window - self._clock.now()
        if left <= 0 or left > self._window:  # window over (or the clock went back)
            return None
        return max(1, math.ceil(left))

    def refused(self, client: str, route: str | None) -> None:
        now = self._clock.now()
        entry = self._touch(client, now)
        elapsed = now - entry.window_start
        if not 0 <= elapsed < self._window:
            entry.window_start, entry.failures = now, 0
        entry.failures += 1
        entry.unlogged += 1
        self._maybe_log(client, entry, now, route)

    def throttled(self, client: str, route: str | None) -> None:
        now = self._clock.now()
        entry = self._touch(client, now)
        entry.throttled += 1
        self._maybe_log(client, entry, now, route)

    def _touch(self, client: str, now: float) -> _Client:
        entry = self._clients.get(client)
        if entry is None:
            entry = self._clients[client] = _Client(now)
            while len(self._clients) > self._max_clients:
                _, old = self._clients.popitem(last=False)
                self._forgotten += old.unlogged + old.throttled
        else:
            self._clients.move_to_end(client)
        return entry

    def _maybe_log(self, client: str, entry: _Client, now: float, route: str | None) -> None:
        if now - entry.logged_at < LOG_EVERY and now >= entry.logged_at:
            return
        if not 0 <= now - self._lines_start < 60.0:
            self._lines_start, self._lines = now, 0
        if self._lines >= LOG_LINES_PER_MINUTE:
            return  # counted on the entry, logged with this client's next line
        self._lines += 1
        extra: dict[str, object] = {
            "client": client,
            "refused": entry.unlogged,
            "throttled": entry.throttled,
            "locked": entry.failures >= self._max_failures,
            "route": route,
        }
        if self._forgotten:
            extra["refused_by_forgotten_clients"], self._forgotten = self._forgotten, 0
        # Never the presented key; the route is enough to spot a misconfigured client.
        log.warning("admin requests refused", extra=extra)
        entry.unlogged = entry.throttled = 0
        entry.logged_at = now


class AdminKeys:
    def __init__(
        self,
        keys: Sequence[AdminKey],
        brake: FailureBrake | None = None,
        clients: ClientResolver | None = None,
    ) -> None:
        self._keys = tuple(keys)
        self.brake = brake
        self._clients = clients or ClientResolver()

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock) -> AdminKeys:
        admin = settings.admin
        brake = FailureBrake(clock, max_failures=admin.max_failures, window=admin.failure_window)
        clients = ClientResolver(settings.server.trusted_proxies)
        return cls(parse_keys(admin.api_keys), brake, clients)

    def authenticate(self, request: web.Request) -> str | Throttled | None:
        """``admin:<name>``; :class:`Throttled` for a client that is braked (its key is not
        even looked at); None for a missing or wrong key, which counts against the client."""
        brake = self.brake
        if brake is None:
            return self.actor_for(request.headers.get("Authorization"))
        client = self._clients.key(request)
        route = request.match_info.route.name
        wait = brake.retry_after(client)
        if wait is not None:
            brake.throttled(client, route)
            return Throttled(wait)
        actor = self.actor_for(request.headers.get("Authorization"))
        if actor is None:
            brake.refused(client, route)
        return actor

    def actor_for(self, authorization: str | None) -> str | None:
        """``admin:<name>`` for a valid ``Bearer`` header, else None.

        Every configured key is compared, match or not, so the time taken does not tell an
        attacker which key (or how much of one) was close.
        """
        if not authorization or not self._keys:
            return None
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return None
        digest = digest_of(presented.strip())
        found: str | None = None
        for key in self._keys:
            if hmac.compare_digest(digest, key.digest):
                found = key.name
        return f"admin:{found}" if found else None
