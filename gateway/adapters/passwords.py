"""Password hashes for console accounts: argon2id (RFC 9106) through argon2-cffi.

Parameters are OWASP's recommended minimum for argon2id (Password Storage Cheat Sheet): 19 MiB
of memory, 2 iterations, 1 lane — about 30 ms a hash on a small server. A hash records its own
parameters, so raising them later only makes :meth:`Passwords.needs_rehash` true: the next
successful login stores a fresh hash.

Input longer than ``domain.accounts.PASSWORD_MAX_LENGTH`` is refused before any hashing, so an
outsider cannot make a login cost more than a normal one. Hashing runs in a worker thread
(argon2 releases the GIL): a login never blocks the event loop for the length of a hash.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.domain.accounts import PASSWORD_MAX_LENGTH

# OWASP Password Storage Cheat Sheet, argon2id: m=19456 KiB, t=2, p=1.
OWASP_MEMORY_KIB = 19_456
OWASP_TIME_COST = 2
OWASP_PARALLELISM = 1


class PasswordTooLong(ValueError):
    """Longer than any password the gateway accepts: refused unhashed."""


def owasp_hasher() -> PasswordHasher:
    return PasswordHasher(
        time_cost=OWASP_TIME_COST,
        memory_cost=OWASP_MEMORY_KIB,
        parallelism=OWASP_PARALLELISM,
        hash_len=32,
        salt_len=16,
        type=Type.ID,
    )


class Passwords:
    """Hash and check passwords (argon2id). ``hasher`` for tests that want other parameters."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or owasp_hasher()
        # Checked against when the account does not exist, so that answer takes as long as a
        # wrong password would (no timing difference tells which emails have accounts).
        self._dummy = self._hasher.hash("not a password of anyone's")

    @staticmethod
    def _check_length(password: str) -> None:
        if len(password) > PASSWORD_MAX_LENGTH:
            raise PasswordTooLong("password too long")

    def hash_now(self, password: str) -> str:
        self._check_length(password)
        return self._hasher.hash(password)

    def verify_now(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches the ``stored`` hash (None: no hash, always False after
        the same work as a real check)."""
        if len(password) > PASSWORD_MAX_LENGTH:
            return False
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True

    async def hash(self, password: str) -> str:
        self._check_length(password)
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        if len(password) > PASSWORD_MAX_LENGTH:
            return False
        return await asyncio.to_thread(self.verify_now, stored, password)
