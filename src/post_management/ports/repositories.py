"""Storage ports the services depend on. adapters/db implements them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from post_management.domain.account import Account
from post_management.domain.post import Post, PostState


@dataclass(frozen=True)
class Cursor:
    """Keyset position: the (created_at, id) of the last row of a page."""

    created_at: datetime
    id: UUID


@dataclass(frozen=True)
class PostFilter:
    user_id: str | None = None
    account_id: UUID | None = None
    state: PostState | None = None
    # Any of these states (with `state` unset); None: no filter.
    states: tuple[PostState, ...] | None = None
    # Posts whose last error contains this text (case-insensitive); None: no filter.
    error_contains: str | None = None


class PostRepository(Protocol):
    """A post stored (added, or saved with its version) hands the events its methods
    recorded to the unit of work's outbox, which writes them when it commits."""

    def add(self, post: Post) -> None: ...

    def get(self, post_id: UUID, *, for_update: bool = False) -> Post | None: ...

    def list(self, where: PostFilter, after: Cursor | None, limit: int) -> list[Post]: ...

    def save(self, post: Post, expected_version: int) -> bool:
        """Write `post` with version+1 if the stored version still matches."""
        ...

    def delete(self, post_id: UUID, expected_version: int) -> bool: ...

    def count_active_for_account(self, account_id: UUID) -> int:
        """Posts of the account that are scheduled or being published."""
        ...


class AccountRepository(Protocol):
    def add(self, account: Account) -> None: ...

    def get(self, account_id: UUID, *, for_update: bool = False) -> Account | None: ...

    def lock_with_post(self, post_id: UUID, user_id: str) -> tuple[Account, Post] | None:
        """`user_id`'s post `post_id` and its account, both locked in one read: the
        account's row first, then the post's, as every writer orders them (None: no
        such post of that user). The post is read after its lock, so a post moved to
        another account meanwhile comes back with its new account id."""
        ...

    def find_by_x_user(self, user_id: str, x_user_id: str) -> Account | None: ...

    def list(self, user_id: str | None, after: Cursor | None, limit: int) -> list[Account]: ...

    def save(self, account: Account, expected_version: int) -> bool: ...

    def delete(self, account_id: UUID, expected_version: int) -> bool: ...


@dataclass(frozen=True)
class IdempotencyRecord:
    request_hash: str
    resource_id: UUID


class IdempotencyKeys(Protocol):
    def get(self, scope: str, key: str) -> IdempotencyRecord | None: ...

    def put(self, scope: str, key: str, record: IdempotencyRecord) -> None: ...


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    action: str
    resource_type: str
    resource_id: UUID
    user_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str = ""


class AuditLog(Protocol):
    def record(self, entry: AuditEntry) -> None: ...


class DuplicateKey(Exception):
    """A unique constraint refused a write (a concurrent create won)."""

    def __init__(self, constraint: str) -> None:
        super().__init__(constraint)
        self.constraint = constraint
