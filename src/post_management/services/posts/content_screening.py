"""Spam and offensive-content checks under the account's content policy.

Runs inside the unit of work of the write it guards: a refusing policy stops the
write; a warning one returns the findings and records them in the audit trail.

A post's texts are screened when they are written (create, edit), and what the
rules found is kept with the post (`Post.screening`), so scheduling it applies the
account's policy of the moment to the stored findings instead of running the
classifier again. A stored screening counts only while its key matches the post's
texts, the rules and the classifier's model; a post without one that counts (stored
before screenings were kept, written under an OFF policy, or of an older model) is
screened when it is checked, and keeps the result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from post_management.domain.account import Account
from post_management.domain.auth import Principal
from post_management.domain.content_rules import (
    ContentPolicy,
    Finding,
    Screening,
    apply_policy,
    policy_of,
    screen,
    screening_key,
)
from post_management.domain.post import Post
from post_management.ports.content import OffensiveLanguage
from post_management.ports.repositories import AuditEntry
from post_management.services.shared.common import audit_entry


class ContentScreen:
    def __init__(self, offensive: OffensiveLanguage | None) -> None:
        self._offensive = offensive
        self._model = offensive.model if offensive is not None else ""

    async def check(
        self, account: Account | None, texts: Sequence[str]
    ) -> tuple[list[Finding], Screening | None]:
        """New texts under `account`'s policy: the findings to report (raises
        FailedPrecondition under a refusing policy) and the screening to keep with the
        post (None: nothing screened). The classifier runs in a worker thread, off
        the event loop."""
        policy = _policy(account)
        if policy is ContentPolicy.OFF:
            return [], None
        screening = await asyncio.to_thread(self.screen, texts)
        return apply_policy(policy, list(screening.findings)), screening

    async def check_post_awaited(self, post: Post, account: Account | None) -> list[Finding]:
        """check_post on the event loop: in a worker thread when the classifier must
        run (no stored screening of these texts and this model)."""
        kept = post.screening
        key = screening_key(post.segments, self._model)
        if _policy(account) is not ContentPolicy.OFF and (kept is None or kept.key != key):
            return await asyncio.to_thread(self.check_post, post, account)
        return self.check_post(post, account)

    def check_post(self, post: Post, account: Account | None) -> list[Finding]:
        """A post's texts as they stand, under its `account`'s policy: the findings to
        report (raises FailedPrecondition under a refusing policy). Uses the post's
        stored screening while it counts, and otherwise screens now and sets
        `post.screening` (kept when the caller saves the post)."""
        policy = _policy(account)
        key = screening_key(post.segments, self._model)
        if post.screening is not None and post.screening.key != key:
            post.screening = None  # made from other texts, rules or model: never used
        if policy is ContentPolicy.OFF:
            return []
        if post.screening is None:
            post.screening = self.screen(post.segments, key)
        return apply_policy(policy, list(post.screening.findings))

    def screen(self, texts: Sequence[str], key: str = "") -> Screening:
        """Every finding in `texts`, whatever the policy."""
        scorer = self._offensive.scores if self._offensive is not None else None
        return screen(texts, scorer, self._model, key)


def _policy(account: Account | None) -> ContentPolicy:
    return policy_of(account.posting_rules if account is not None else {})


def findings_entry(
    principal: Principal,
    post: Post,
    findings: list[Finding],
    request_id: str = "",
) -> AuditEntry | None:
    """The audit row listing the findings a warning policy let through (None for
    no findings)."""
    if not findings:
        return None
    return audit_entry(
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
