"""Personal-data rules: the pseudonym that replaces an erased user's id, and what
never leaves the service in an audit trail or an export."""

from __future__ import annotations

import hashlib
from typing import Any

# Part of the hash input, so the pseudonym of a user id here differs from a plain
# SHA-256 of it that some other system may keep.
_PSEUDONYM_DOMAIN = b"post-management/erased-user/v1\x00"

# Keys whose values are secrets wherever they appear in a stored document.
SECRET_KEYS = frozenset(
    {
        "credentials",
        "credentials_encrypted",
        "access_token",
        "access_token_secret",
        "token",
        "secret",
        "password",
        "authorization",
    }
)
REDACTED = "[REDACTED]"


def pseudonym(user_id: str) -> str:
    """Stable: the same user id always maps to the same value, so an erased user's
    audit rows stay grouped and the tombstone can be checked without the raw id."""
    digest = hashlib.sha256(_PSEUDONYM_DOMAIN + user_id.encode()).hexdigest()
    return f"erased:{digest[:48]}"


def redact(value: Any) -> Any:
    """A copy of a JSON document with every secret-named value replaced."""
    if isinstance(value, dict):
        return {
            key: REDACTED if str(key).lower() in SECRET_KEYS else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value
