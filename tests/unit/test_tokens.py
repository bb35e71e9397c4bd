from __future__ import annotations

import pytest

from gateway.adapters.tokens import TokenError, TokenProblem, TokenService
from gateway.dev.clock import FakeClock
from tests.harness import forge

LINK = "lk_abcdefghijkl"


def service(
    keys: tuple[str, ...] = ("new-key",), max_age: float = 3600, clock: FakeClock | None = None
) -> TokenService:
    return TokenService(keys, max_age, clock or FakeClock())


def test_round_trip_carries_only_the_link_id() -> None:
    token = service().sign(LINK)
    assert token.split(".")[0] == LINK
    assert service().verify(token).link_id == LINK


def test_rotation_newest_signs_all_verify() -> None:
    old_token = service(("old-key",)).sign(LINK)
    rotated = service(("new-key", "old-key"))
    assert rotated.verify(old_token).link_id == LINK
    assert rotated.sign(LINK) == service(("new-key",)).sign(LINK)
    with pytest.raises(TokenError) as caught:
        service(("new-key",)).verify(old_token)  # old key retired
    assert caught.value.problem is TokenProblem.FORGED


@pytest.mark.parametrize("cut", [1, 5, 20, 30, 40])
def test_truncated_tokens_are_told_apart(cut: int) -> None:
    token = service().sign(LINK)
    with pytest.raises(TokenError) as caught:
        service().verify(token[:-cut])
    assert caught.value.problem is TokenProblem.TRUNCATED


@pytest.mark.parametrize(
    "mangle",
    [
        forge,  # one character of the signature
        lambda t: "lk_zzzzzzzzzzzz" + t[15:],  # another link id under the same signature
        lambda t: "<script>alert(1)</script>",
        lambda t: t + "extra",
    ],
)
def test_forged_tokens(mangle: object) -> None:
    token = service().sign(LINK)
    with pytest.raises(TokenError) as caught:
        service().verify(mangle(token))  # type: ignore[operator]
    assert caught.value.problem is TokenProblem.FORGED


def test_expiry_uses_the_injected_clock_and_names_the_link() -> None:
    clock = FakeClock()
    tokens = service(max_age=3600, clock=clock)
    token = tokens.sign(LINK)
    clock.advance(3600)
    assert tokens.verify(token).link_id == LINK  # cached result, still checked for age
    clock.advance(1)
    with pytest.raises(TokenError) as caught:
        tokens.verify(token)
    assert caught.value.problem is TokenProblem.EXPIRED
    assert caught.value.link_id == LINK


def test_a_link_always_gets_the_same_token_from_its_creation_time() -> None:
    clock = FakeClock()
    tokens = service(clock=clock)
    first = tokens.sign(LINK, issued_at=clock.now())
    clock.advance(500)
    assert tokens.sign(LINK, issued_at=clock.now() - 500) == first
    assert tokens.verify(first).link_id == LINK
    assert tokens.sign(LINK, issued_at=clock.now()) != first
