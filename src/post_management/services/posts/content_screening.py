"""Spam and offensive-content checks under the account's content policy.

Runs inside the unit of work of the write it guards: a refusing policy stops the
write; a warning one returns the findings and records them in the audit trail.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from post_management.domain.auth import Principal
from post_management.domain.content_rules import (
    ContentPolicy,
    Finding,
    apply_policy,
    content_findings,
    policy_of,
)
from post_management.domain.post import Post
from post_management.ports.content import OffensiveLanguage
from post_management.ports.unit_of_work import UnitOfWork
from post_management.services.shared.common import audit


class ContentScreen:
    def __init__(self, offensive: OffensiveLanguage | None) -> None:
        self._offensive = offensive

    def check(self, uow: UnitOfWork, account_id: UUID, texts: Sequence[str]) -> list[Finding]:
        """The findings to report (raises FailedPrecondition under a refusing policy)."""
        account = uow.accounts.get(account_id)
        policy = policy_of(account.posting_rules if account is not None else {})
        if policy is ContentPolicy.OFF:
            return []
        scorer = self._offensive.scores if self._offensive is not None else None
        findings: list[Finding] = []
        for text in texts:
            for finding in content_findings(text, scorer):
                if finding not in findings:
                    findings.append(finding)
        return apply_policy(policy, findings)


def audit_findings(
    uow: UnitOfWork,
    principal: Principal,
    post: Post,
    findings: list[Finding],
    request_id: str = "",
) -> None:
    """One audit row listing the findings a warning policy let through."""
    if not findings:
        return
    audit(
        uow,
        principal,
        "post.content_findings",
        resource_type="post",
        resource_id=post.id,
        user_id=post.user_id,
        before=None,
        after={"findings": [_finding_json(finding) for finding in findings]},
        request_id=request_id,
    )


def _finding_json(finding: Finding) -> dict[str, object]:
    return {"rule": finding.rule.value, "excerpt": finding.excerpt, "score": finding.score}
