"""Helpers every use case shares: audit records and optimistic concurrency."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, is_dataclass
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Any
from uuid import UUID

from post_management.domain.account import Account, account_not_found
from post_management.domain.auth import Principal
from post_management.domain.errors import Aborted, FailedPrecondition, PermissionDenied
from post_management.domain.reasons import Reason
from post_management.ports.async_unit_of_work import AsyncUnitOfWork
from post_management.ports.repositories import AuditEntry

# Never copied into audit rows: secrets, and the content screen's notes on a post
# (the findings callers see have audit rows of their own).
_UNAUDITED_FIELDS = frozenset({"credentials", "screening"})


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime | UUID | Enum):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


@dataclass(frozen=True)
class _Held:
    value: Any


def _audit_value(value: Any) -> Any:
    """_json_safe(asdict-copy of value), without asdict's deep copies for the plain
    values a domain object is made of (a profile of SchedulePost showed them)."""
    if isinstance(value, datetime | UUID | Enum):
        return str(value)
    if value is None or isinstance(value, str | int | float):
        return value
    if type(value) is list:
        return [_audit_value(item) for item in value]
    if type(value) is dict:
        return {key: _audit_value(item) for key, item in value.items()}
    # Tuples, nested dataclasses and the rest: as asdict copies them.
    return _json_safe(asdict(_Held(value))["value"])


@cache
def _field_names(kind: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(kind))


def snapshot(resource: Any) -> dict[str, Any]:
    """The audit form of a domain object: JSON-safe, secrets left out."""
    assert is_dataclass(resource) and not isinstance(resource, type)
    names = _field_names(type(resource))
    data = {
        name: _audit_value(getattr(resource, name))
        for name in names
        if name not in _UNAUDITED_FIELDS
    }
    if "credentials" in names:
        data["has_credentials"] = getattr(resource, "credentials", None) is not None
    return data


def audit_entry(
    principal: Principal,
    action: str,
    *,
    resource_type: str,
    resource_id: UUID,
    user_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    request_id: str = "",
) -> AuditEntry:
    """The audit row of `principal`'s `action` on a resource."""
    return AuditEntry(
        actor=f"{principal.role}:{principal.subject}",
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        user_id=user_id,
        before=before,
        after=after,
        request_id=request_id,
    )


async def ensure_not_erased(uow: AsyncUnitOfWork, user_id: str) -> None:
    """Nothing may be created for an erased user: a late or replayed create would
    bring their data back (docs/security.md)."""
    if await uow.erasures.is_erased(user_id):
        raise user_erased()


def user_erased() -> FailedPrecondition:
    """The answer to a create for an erased user."""
    return FailedPrecondition(
        "this user's data was erased; nothing can be created for it",
        reason=Reason.USER_ERASED,
    )


async def ensure_account_filter(
    uow: AsyncUnitOfWork, principal: Principal, account_id: UUID | None
) -> None:
    """A list filtered by another user's account is refused like the account itself,
    rather than answered with an empty page (the same answer either way)."""
    if account_id is None:
        return
    account = await uow.accounts.get(account_id)
    if account is not None:
        ensure_account_owner(principal, account.user_id)


async def load_account(uow: AsyncUnitOfWork, principal: Principal, account_id: UUID) -> Account:
    """The account, if it exists and the caller may act for its user."""
    account = await uow.accounts.get(account_id)
    if account is None:
        raise account_not_found(account_id)
    principal.ensure_can_act_for(account.user_id)
    return account


def ensure_account_owner(principal: Principal, owner: str) -> None:
    """An account filter naming another user's account: PERMISSION_DENIED."""
    try:
        principal.ensure_can_act_for(owner)
    except PermissionDenied:
        raise PermissionDenied(
            "the account belongs to another user", reason=Reason.FOREIGN_ACCOUNT
        ) from None


def check_etag(current: str, given: str) -> None:
    """An etag sent by the caller must match the stored one (AIP-154)."""
    if given and given != current:
        raise Aborted(
            "the resource changed since it was read; read it again and retry",
            reason=Reason.ETAG_MISMATCH,
            metadata={"current_etag": current},
        )
