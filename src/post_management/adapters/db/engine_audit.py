"""The publishing engine's transitions in the audit trail, like request-driven changes.

Recorded in the settlement's own transaction with the actor "system:publisher": a post
published, failed or dead-lettered, and an account paused (a streak of failures) or
suspended (X's answer). Retries and unknown outcomes are not transitions a user acts on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from post_management.adapters.db.records import SqlAuditLog
from post_management.domain import events
from post_management.domain.account import AccountState
from post_management.domain.post import PostState
from post_management.domain.publishing import Claim, Settlement
from post_management.ports.repositories import AuditEntry

ACTOR = "system:publisher"
_POST_ACTIONS = {
    PostState.PUBLISHED: "post.published",
    PostState.FAILED: "post.failed",
    PostState.DEAD_LETTERED: "post.dead_lettered",
}


def audit_settlements(
    connection: Connection,
    items: Sequence[tuple[Claim, Settlement, Sequence[events.DomainEvent]]],
) -> None:
    """The entries of several settlements, written in one statement."""
    entries = [entry for item in items for entry in _entries(*item)]
    if entries:
        SqlAuditLog(connection).record_many(entries)


def _entries(
    claim: Claim, settlement: Settlement, added: Sequence[events.DomainEvent]
) -> list[AuditEntry]:
    entries = []
    action = _POST_ACTIONS.get(settlement.state)
    if action is not None:
        after: dict[str, Any] = {
            "state": settlement.state.value,
            "attempt": claim.attempt_number,
        }
        if settlement.x_post_id:
            after["x_post_id"] = settlement.x_post_id
        if settlement.detail:
            after["last_error"] = settlement.detail[:2000]
        entries.append(
            AuditEntry(
                actor=ACTOR,
                action=action,
                resource_type="post",
                resource_id=claim.post_id,
                user_id=claim.user_id,
                before={"state": PostState.PUBLISHING.value},
                after=after,
            )
        )
    state, reason = _account_change(settlement, added)
    if state is not None:
        entries.append(
            AuditEntry(
                actor=ACTOR,
                action=f"account.{state.value.lower()}",
                resource_type="account",
                resource_id=claim.account_id,
                user_id=claim.user_id,
                before=None,
                after={"state": state.value, "reason": reason},
            )
        )
    return entries


def _account_change(
    settlement: Settlement, added: Sequence[events.DomainEvent]
) -> tuple[AccountState | None, str]:
    """The account's new state: X's verdict, or a pause after a streak of failures."""
    suspended = [e for e in added if isinstance(e, events.AccountSuspended)]
    reason = suspended[0].reason if suspended else ""
    if settlement.account_state is not None:
        return settlement.account_state, reason or settlement.detail[:500]
    if suspended:
        return AccountState.PAUSED, reason
    return None, ""
