"""Verified tokens cached for their lifetime: never past exp, bounded, and nothing
that fails verification is ever remembered."""

from __future__ import annotations

import time
from datetime import timedelta

import jwt
import pytest

from post_management.domain.auth import Principal, Role
from post_management.domain.errors import Unauthenticated
from post_management.entrypoints.grpc.token_cache import MAX_CACHED_TOKEN_LENGTH, VerifiedTokens
from post_management.entrypoints.grpc.tokens import TokenCodec

SECRET = "s" * 40


class CountingCodec(TokenCodec):
    def __init__(self, secret: str = SECRET) -> None:
        super().__init__(secret, issuer="i", audience="a")
        self.verified = 0

    def verify_until(self, token: str) -> tuple[Principal, float]:
        self.verified += 1
        return super().verify_until(token)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_verified_token_is_checked_once_and_answers_the_same_principal() -> None:
    codec = CountingCodec()
    tokens = VerifiedTokens(codec)
    token = codec.mint("alice", Role.USER)
    assert tokens.verify(token) == Principal("alice", Role.USER)
    assert tokens.verify(token) == Principal("alice", Role.USER)
    assert codec.verified == 1


def test_a_cached_token_is_verified_again_once_its_exp_passes() -> None:
    codec, clock = CountingCodec(), Clock()
    tokens = VerifiedTokens(codec, clock=clock)
    token = codec.mint("alice", Role.USER, ttl=timedelta(minutes=5))
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    tokens.verify(token)
    clock.now = exp - 0.5
    tokens.verify(token)
    assert codec.verified == 1
    clock.now = exp  # at exp the entry is gone, though the codec's leeway still accepts
    assert tokens.verify(token) == Principal("alice", Role.USER)
    assert codec.verified == 2
    assert len(tokens) == 0  # not stored again past its exp


def test_an_expired_token_is_refused_every_time_and_never_stored() -> None:
    codec = CountingCodec()
    tokens = VerifiedTokens(codec)
    expired = codec.mint("alice", Role.USER, ttl=timedelta(minutes=-5))
    for _ in range(2):
        with pytest.raises(Unauthenticated) as caught:
            tokens.verify(expired)
        assert caught.value.reason == "TOKEN_EXPIRED"
    assert (codec.verified, len(tokens)) == (2, 0)


def test_invalid_tokens_are_never_cached_as_valid() -> None:
    codec = CountingCodec()
    tokens = VerifiedTokens(codec)
    good = codec.mint("alice", Role.USER)
    tokens.verify(good)
    forged = CountingCodec("o" * 40).mint("alice", Role.SERVICE)  # another secret
    tampered = good[:-2] + ("AA" if good[-2:] != "AA" else "BB")
    for bad in (forged, tampered, "not-a-jwt", good + "x"):
        for _ in range(2):
            with pytest.raises(Unauthenticated) as caught:
                tokens.verify(bad)
            assert caught.value.reason == "TOKEN_INVALID"
    assert len(tokens) == 1
    # A codec with a new secret (rotation) starts a new cache: the old token fails.
    rotated = VerifiedTokens(CountingCodec("n" * 40))
    with pytest.raises(Unauthenticated):
        rotated.verify(good)


def test_the_cache_is_bounded_and_drops_the_least_recently_used() -> None:
    codec = CountingCodec()
    tokens = VerifiedTokens(codec, max_entries=3)
    minted = [codec.mint(f"user-{i}", Role.USER) for i in range(5)]
    for token in minted[:3]:
        tokens.verify(token)
    tokens.verify(minted[0])  # now the most recent
    for token in minted[3:]:
        tokens.verify(token)
    assert len(tokens) == 3
    assert codec.verified == 5
    tokens.verify(minted[0])  # kept
    assert codec.verified == 5
    tokens.verify(minted[1])  # dropped first
    assert codec.verified == 6
    assert len(tokens) == 3


def test_huge_tokens_are_verified_every_time() -> None:
    codec = CountingCodec()
    tokens = VerifiedTokens(codec)
    big = codec.mint("alice" + "x" * 40, Role.USER)
    padded = TokenCodec(SECRET, issuer="i", audience="a")
    claims = jwt.decode(big, SECRET, algorithms=["HS256"], audience="a", issuer="i")
    claims["pad"] = "p" * MAX_CACHED_TOKEN_LENGTH
    huge = jwt.encode(claims, SECRET, algorithm="HS256")
    assert padded.verify(huge).subject.startswith("alice")
    tokens.verify(huge)
    tokens.verify(huge)
    assert (codec.verified, len(tokens)) == (2, 0)


def test_max_entries_must_be_positive() -> None:
    with pytest.raises(ValueError):
        VerifiedTokens(CountingCodec(), max_entries=0)
