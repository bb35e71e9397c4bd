"""Tokens longer than any the gateway issues are refused before any work, and never cached
(issue 10 item 12: 10,000 unique 8 KB tokens grew the process by 65 MB through that cache)."""

from __future__ import annotations

import pytest

from gateway.adapters.tokens import TokenError, TokenProblem, TokenService
from gateway.dev.clock import FakeClock

LINK = "lk_abcdefghijkl"


def service() -> TokenService:
    return TokenService(("new-key", "old-key"), 366 * 86400, FakeClock())


def test_the_limit_sits_just_above_the_longest_token_sign_can_make() -> None:
    tokens = service()
    # From now to the largest timestamp the token format accepts (8 base64 characters).
    longest = max(len(tokens.sign(LINK, issued_at=t)) for t in (1, 1_800_000_000, 2**48 - 1))
    assert longest <= tokens.max_length <= longest + 16
    assert tokens.verify(tokens.sign(LINK)).link_id == LINK


def test_ten_thousand_unique_long_tokens_leave_no_trace() -> None:
    tokens = service()
    for i in range(10_000):
        token = f"lk_{i:012d}." + "A" * 8192
        with pytest.raises(TokenError) as caught:
            tokens.verify(token)
        assert caught.value.problem is TokenProblem.FORGED
    assert len(tokens._rejected) == 0 and len(tokens._cache) == 0


def test_a_genuine_token_with_junk_appended_past_the_limit_is_refused() -> None:
    tokens = service()
    genuine = tokens.sign(LINK)
    padded = genuine + "A" * (tokens.max_length - len(genuine) + 1)
    with pytest.raises(TokenError) as caught:
        tokens.verify(padded)
    assert caught.value.problem is TokenProblem.FORGED


def test_short_bad_tokens_are_still_remembered() -> None:
    tokens = service()
    with pytest.raises(TokenError):
        tokens.verify("lk_abc")
    assert len(tokens._rejected) == 1
