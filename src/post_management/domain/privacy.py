"""Personal-data rules: the pseudonym that replaces an erased user's id, and what
never leaves the service in an audit trail or an export."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from post_management.domain.analytics import PublicCounts
from post_management.domain.errors import FailedPrecondition
from post_management.domain.post import PostState
from post_management.domain.reasons import Reason

# Part of the hash input, so the pseudonym of a user id here differs from a plain
# SHA-256 of it that some other system may keep.
_PSEUDONYM_DOMAIN = b"post-management/erased-user/v1\x00"
_PREFIX = "erased:"

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


class Pseudonyms:
    """What replaces an erased user's id: an HMAC of the id under a server key.

    Stable for one key: the same user id always maps to the same value, so an
    erased user's audit rows stay grouped and the tombstone can be checked without
    the raw id. Keyed, so nobody without the key can link a tombstone back to a
    user by hashing guessed ids (docs/security.md).
    """

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("a pseudonym key needs at least 32 bytes")
        self._key = key

    def of(self, user_id: str) -> str:
        digest = hmac.new(self._key, _PSEUDONYM_DOMAIN + user_id.encode(), hashlib.sha256)
        return f"{_PREFIX}k:{digest.hexdigest()[:48]}"

    @staticmethod
    def unkeyed(user_id: str) -> str:
        """The pseudonym erasures wrote before it was keyed: still honoured by the
        tombstone check, replaced when the same user is erased again."""
        digest = hashlib.sha256(_PSEUDONYM_DOMAIN + user_id.encode()).hexdigest()
        return f"{_PREFIX}{digest[:48]}"

    def every_form(self, user_id: str) -> tuple[str, str]:
        """The keyed pseudonym first, then the unkeyed one of older tombstones."""
        return self.of(user_id), self.unkeyed(user_id)


@dataclass(frozen=True)
class AuditRecord:
    """One entry of a user's audit trail: who did what to which resource, with the
    resource as it was before and after (secrets redacted)."""

    id: int
    occurred_at: datetime
    actor: str
    action: str
    resource_type: str
    resource_id: UUID
    user_id: str
    request_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True)
class MetricsRecord(PublicCounts):
    """One metrics snapshot of a user's post, as their data export lists it: its
    public counts."""

    post_id: UUID
    collected_at: datetime


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


def erasure_resource_id(pseudonym: str) -> UUID:
    """The resource id of an erasure's own audit row (`user.erase`)."""
    return uuid5(NAMESPACE_URL, pseudonym)


def ensure_none_publishing(states: Iterable[PostState]) -> None:
    """An erasure waits while a post of the user is being published: it may still
    land on X after its row is gone, and then nothing would queue its removal."""
    if PostState.PUBLISHING in set(states):
        raise FailedPrecondition(
            "some of the user's posts are being published: retry in a minute",
            reason=Reason.POSTS_BEING_PUBLISHED,
        )
