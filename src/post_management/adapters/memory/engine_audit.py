"""The engine's transitions in the memory audit log, as adapters/db/engine_audit.py
writes them in the settlement's transaction (actor "system:publisher")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from post_management.domain import events
from post_management.domain.account import AccountState
from post_management.domain.post import PostState
from post_management.domain.publishing import Claim, Settlement
from post_management.ports.repositories import AuditEntry

ACTOR = "system:publisher"
# Retries and unknown outcomes are not transitions a user acts on.
_AUDITED = {
    PostState.PUBLISHED: "post.published",
    PostState.FAILED: "post.failed",
    PostState.DEAD_LETTERED: "post.dead_lettered",
}


def settlement_entries(
    claim: Claim, settlement: Settlement, added: Sequence[events.DomainEvent]
) -> list[AuditEntry]:
    entries = []
    if settlement.state in _AUDITED:
        after: dict[str, Any] = {"state": settlement.state.value, "attempt": claim.attempt_number}
        if settlement.x_post_id:
            after["x_post_id"] = settlement.x_post_id
        if settlement.detail:
            after["last_error"] = settlement.detail[:2000]
        before = {"state": PostState.PUBLISHING.value}
        action = _AUDITED[settlement.state]
        entries.append(
            AuditEntry(ACTOR, action, "post", claim.post_id, claim.user_id, before, after)
        )
    paused = next((e for e in added if isinstance(e, events.AccountSuspended)), None)
    why = paused.reason if paused is not None else ""
    state = settlement.account_state
    if state is not None:
        why = why or settlement.detail[:500]
    elif paused is not None:
        state = AccountState.PAUSED
    if state is not None:
        change = {"state": state.value, "reason": why}
        action = f"account.{state.value.lower()}"
        entries.append(
            AuditEntry(ACTOR, action, "account", claim.account_id, claim.user_id, None, change)
        )
    return entries
