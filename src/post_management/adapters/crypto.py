"""Credentials at rest: Fernet (AES-128-CBC + HMAC) with key rotation; keys derived
from a server secret for signatures."""

from __future__ import annotations

import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


def derived_key(secret: str, purpose: str) -> bytes:
    """A key for one purpose from a server secret: HMAC-SHA256(secret, purpose), so
    one secret feeds several signatures that cannot stand in for each other."""
    return hmac.new(secret.encode(), f"post-management/{purpose}".encode(), hashlib.sha256).digest()


class InvalidKeys(ValueError):
    pass


class FernetBox:
    """Encrypts with the first key; decrypts with any, so keys can be rotated. Keeps
    no plaintext: an X token in the clear lives only as long as its caller holds it
    (not past a disconnect, a new token or an erasure; docs/security.md)."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise InvalidKeys("at least one key is needed")
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])
        except (ValueError, TypeError) as exc:
            raise InvalidKeys("each key must be a url-safe base64 32-byte Fernet key") from exc

    @staticmethod
    def parse(keys: str) -> FernetBox:
        return FernetBox([key.strip() for key in keys.split(",") if key.strip()])

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    def encrypt(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def decrypt(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(bytes(token))
        except InvalidToken as exc:
            raise InvalidKeys("no configured key decrypts the stored credentials") from exc

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt with the newest key."""
        return self._fernet.rotate(token)
