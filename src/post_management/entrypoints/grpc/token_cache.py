"""Verified tokens remembered for their lifetime, so a caller's every call does not
re-run HMAC verification and claim checks.

Keyed by the token string itself (an HMAC-signed token cannot be forged into a key
that is already here). Only tokens that verified are stored, and only until their
`exp`: the codec's clock-skew leeway is never extended by the cache. The cache is
bounded; the least recently used token goes first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from post_management.domain.auth import Principal
from post_management.entrypoints.grpc.tokens import TokenCodec

DEFAULT_MAX_ENTRIES = 4096
# Longer strings are verified every time: a few huge tokens cannot fill memory.
MAX_CACHED_TOKEN_LENGTH = 2048


class VerifiedTokens:
    """A TokenVerifier in front of a TokenCodec. Used on the event loop only."""

    def __init__(
        self,
        codec: TokenCodec,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._codec = codec
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def verify(self, token: str) -> Principal:
        entry = self._entries.get(token)
        if entry is not None:
            principal, expires = entry
            if self._clock() < expires:
                self._entries.move_to_end(token)
                return principal
            del self._entries[token]
        # Raises Unauthenticated for anything that does not verify: never stored.
        principal, expires = self._codec.verify_until(token)
        if len(token) <= MAX_CACHED_TOKEN_LENGTH and self._clock() < expires:
            self._entries[token] = (principal, expires)
            if len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return principal
