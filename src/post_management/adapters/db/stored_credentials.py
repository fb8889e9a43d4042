"""X credentials as the database keeps them: JSON sealed with the configured keys."""

from __future__ import annotations

import json

from post_management.adapters.crypto import FernetBox, InvalidKeys
from post_management.domain.account import Credentials


def seal(box: FernetBox, credentials: Credentials) -> bytes:
    plain = {
        "access_token": credentials.access_token,
        "access_token_secret": credentials.access_token_secret,
    }
    return box.encrypt(json.dumps(plain).encode())


def unseal(box: FernetBox, stored: bytes) -> Credentials:
    """The credentials; InvalidKeys when no configured key decrypts them."""
    data = json.loads(box.decrypt(bytes(stored)))
    return Credentials(data["access_token"], data["access_token_secret"])


def unseal_or_none(box: FernetBox, stored: bytes | None) -> Credentials | None:
    """None when nothing is stored or no configured key decrypts it."""
    if stored is None:
        return None
    try:
        return unseal(box, stored)
    except InvalidKeys:
        return None
