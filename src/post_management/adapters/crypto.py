"""Credentials at rest: Fernet (AES-128-CBC + HMAC) with key rotation; keys derived
from a server secret for signatures."""

from __future__ import annotations

import functools
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


def derived_key(secret: str, purpose: str) -> bytes:
    """A key for one purpose from a server secret: HMAC-SHA256(secret, purpose), so
    one secret feeds several signatures that cannot stand in for each other."""
    return hmac.new(secret.encode(), f"post-management/{purpose}".encode(), hashlib.sha256).digest()


class InvalidKeys(ValueError):
    pass


# Stored credentials decrypted lately, by their token: every schedule and claim reads
# an account row, and Fernet's HMAC check and AES took 2-4 % of a SchedulePost's CPU.
# A token decrypts to one plaintext for good (its IV is inside it).
DECRYPTED_KEPT = 4096


class FernetBox:
    """Encrypts with the first key; decrypts with any, so keys can be rotated."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise InvalidKeys("at least one key is needed")
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])
        except (ValueError, TypeError) as exc:
            raise InvalidKeys("each key must be a url-safe base64 32-byte Fernet key") from exc
        # Per box: a box of other keys decides afresh. Failures are not kept.
        self._decrypted = functools.lru_cache(maxsize=DECRYPTED_KEPT)(self._decrypt)

    @staticmethod
    def parse(keys: str) -> FernetBox:
        return FernetBox([key.strip() for key in keys.split(",") if key.strip()])

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    def encrypt(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def decrypt(self, token: bytes) -> bytes:
        return self._decrypted(bytes(token))

    def _decrypt(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken as exc:
            raise InvalidKeys("no configured key decrypts the stored credentials") from exc

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt with the newest key."""
        return self._fernet.rotate(token)
