"""Admin API keys: configured by name, held only as SHA-256 digests, compared in constant time.

``admin.api_keys`` entries are ``name:<64 hex digits>`` (the SHA-256 of the key, so the config
file never holds a usable secret) or ``name:<plain key>``, hashed here at start-up. The key's
name becomes the actor ``admin:<name>`` in the audit trail. Removing an entry from the config
revokes that key at the next start.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.config import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,50}$")
_HEX_DIGEST = re.compile(r"^[0-9a-fA-F]{64}$")


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
        digest = bytes.fromhex(secret) if _HEX_DIGEST.match(secret) else digest_of(secret)
        keys.append(AdminKey(name, digest))
    names = [k.name for k in keys]
    if len(set(names)) != len(names):
        raise ConfigError("admin.api_keys: two keys have the same name")
    return tuple(keys)


class AdminKeys:
    def __init__(self, keys: Sequence[AdminKey]) -> None:
        self._keys = tuple(keys)

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
