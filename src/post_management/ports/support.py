"""Small ports: time, and the cipher for credentials at rest."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """An aware UTC datetime."""
        ...


class SecretBox(Protocol):
    """Encrypts X credentials at rest; decrypts with any configured key."""

    def encrypt(self, plaintext: bytes) -> bytes: ...

    def decrypt(self, token: bytes) -> bytes: ...
