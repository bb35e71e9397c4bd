"""Signed link tokens: ``{link_id}.{timestamp}.{signature}`` made by itsdangerous.

Only the link id is signed: no name, email or amount ever appears in a URL. Several secrets may be
configured, newest first; the newest signs and every one verifies, so keys rotate without breaking
links already in parents' inboxes. A token is verifiable without the database, and the three ways
it can be wrong are told apart, because each deserves a different page:

- *truncated*: the right shape, cut short (a mail client wrapped the line): "copy the whole link";
- *forged* (or garbage): the signature does not match: "link not valid";
- *expired*: a genuine token older than ``tokens.max_age``: "this link has expired".
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from itsdangerous.encoding import base64_encode, int_to_bytes

from gateway.bounded import BoundedCache
from gateway.clock import Clock

LINK_ID = re.compile(r"lk_[A-Za-z0-9_-]{12}")
# Whole token: id, base64 timestamp, 27-character base64 HMAC-SHA1.
_FULL = re.compile(rf"^{LINK_ID.pattern}\.[A-Za-z0-9_-]{{4,8}}\.[A-Za-z0-9_-]{{27}}$")
# A strict prefix of a well-formed token: what is left after a line wrap or a careless copy.
_PREFIX = re.compile(r"^lk_[A-Za-z0-9_-]{0,12}(\.[A-Za-z0-9_-]{0,8}(\.[A-Za-z0-9_-]{0,26})?)?$")
_SALT = "gateway.pay-link"
_LINK_ID_LENGTH = len("lk_") + 12
# Room above the longest token sign() can make: a token longer than that is refused unread.
LENGTH_MARGIN = 8


class TokenProblem(StrEnum):
    TRUNCATED = "truncated"
    FORGED = "forged"
    EXPIRED = "expired"


class TokenError(Exception):
    def __init__(self, problem: TokenProblem, link_id: str | None = None) -> None:
        super().__init__(problem.value)
        self.problem = problem
        # Known only for an expired token: its signature was genuine.
        self.link_id = link_id


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    link_id: str
    issued_at: datetime


class _ClockSigner(TimestampSigner):
    """itsdangerous reads ``time.time()``; the gateway's clock is injected instead."""

    clock: Clock

    def get_timestamp(self) -> int:
        return int(self.clock.now())

    def sign_at(self, value: str, timestamp: int) -> bytes:
        """Sign with a given timestamp (itsdangerous' own ``sign`` with the clock fixed)."""
        signed = value.encode("ascii") + b"." + base64_encode(int_to_bytes(timestamp))
        return signed + b"." + self.get_signature(signed)


def _longest_token(signer: TimestampSigner) -> int:
    """The longest token ``signer`` makes for a link id: the id, the base64 of the largest
    timestamp itsdangerous encodes (8 bytes), the signature, and the two separators."""
    timestamp = len(base64_encode(int_to_bytes(2**64 - 1)))
    signature = len(signer.get_signature(b"lk_"))
    return _LINK_ID_LENGTH + timestamp + signature + 2 * len(signer.sep)


# A verified token costs its key, a tuple, the timestamp and the answer (its link id and time):
# ~450 bytes with the map's own share, so 6 MB keep ~14,000 links' tokens (10,000 links' worth of
# GETs never pay the HMAC; past that a miss costs one, ~14 µs). Rejected ones cost their key.
VERIFIED_CACHE_BYTES = 6 << 20
REJECTED_CACHE_BYTES = 1 << 20


def _weigh_verified(token: str, entry: tuple[VerifiedToken, int]) -> int:
    return sys.getsizeof(token) + 250


def _weigh_rejected(token: str, problem: TokenProblem) -> int:
    return sys.getsizeof(token)


class TokenService:
    def __init__(
        self, secret_keys: Sequence[str], max_age: float, clock: Clock, cache_size: int = 16_384
    ) -> None:
        if not secret_keys:
            raise ValueError("at least one token secret key is required")
        # itsdangerous signs with the *last* key; our config lists the newest first.
        self._signer = _ClockSigner(list(reversed(secret_keys)), salt=_SALT)
        self._signer.clock = clock
        self._clock = clock
        self._max_age = max_age
        # Verified tokens -> (answer, timestamp); a hit skips the HMAC (the hot path of GET).
        # Both caches are bounded in bytes as well as entries (gateway.bounded).
        self._cache: BoundedCache[str, tuple[VerifiedToken, int]] = BoundedCache(
            cache_size, VERIFIED_CACHE_BYTES, weigh=_weigh_verified
        )
        self._rejected: BoundedCache[str, TokenProblem] = BoundedCache(
            cache_size, REJECTED_CACHE_BYTES, weigh=_weigh_rejected
        )
        self.max_length = _longest_token(self._signer) + LENGTH_MARGIN

    def sign(self, link_id: str, issued_at: float | None = None) -> str:
        """The token for a link. Given the link's creation time it is the same every time it is
        asked for (a resent email carries the very link the first one did)."""
        if not LINK_ID.fullmatch(link_id):
            raise ValueError(f"not a link id: {link_id!r}")
        if issued_at is None:
            return self._signer.sign(link_id).decode("ascii")
        return self._signer.sign_at(link_id, int(issued_at)).decode("ascii")

    def verify(self, token: str) -> VerifiedToken:
        if len(token) > self.max_length:
            # Longer than any token this gateway issues: no lookup, no HMAC, and not remembered
            # (unique 8 KB tokens by the thousand would otherwise fill the rejected cache).
            raise TokenError(TokenProblem.FORGED)
        cached = self._cache.get(token)
        if cached is None:
            known_bad = self._rejected.get(token)
            if known_bad is not None:
                raise TokenError(known_bad)
            try:
                link_id, issued = self._verify_signature(token)
            except TokenError as exc:
                # Scanners retry the same broken link over and over: remember the verdict.
                self._rejected.put(token, exc.problem)
                raise
            cached = (VerifiedToken(link_id, datetime.fromtimestamp(issued, UTC)), issued)
            self._cache.put(token, cached)
        verified, timestamp = cached
        if self._clock.now() - timestamp > self._max_age:
            raise TokenError(TokenProblem.EXPIRED, verified.link_id)
        return verified

    def _verify_signature(self, token: str) -> tuple[str, int]:
        if not _FULL.match(token):
            problem = TokenProblem.TRUNCATED if _PREFIX.match(token) else TokenProblem.FORGED
            raise TokenError(problem)
        try:
            # max_age is checked by verify() against the injected clock, on every call.
            value, issued = self._signer.unsign(token, return_timestamp=True)
        except SignatureExpired:  # pragma: no cover - no max_age is passed
            raise TokenError(TokenProblem.EXPIRED) from None
        except BadSignature:
            raise TokenError(TokenProblem.FORGED) from None
        return value.decode("ascii"), int(issued.timestamp())
