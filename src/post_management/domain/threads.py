"""Threads: a post with follow-up segments, published on X as a reply chain.

Segment 0 is the post's own text (with its media); segment i replies to
segment i-1. Each segment's X id is recorded as soon as X returns it, so a
retry resumes after the last published segment instead of posting it again.
"""

from __future__ import annotations

from uuid import UUID

from post_management.domain.content import content_violations
from post_management.domain.duplicates import normalize_text
from post_management.domain.errors import FailedPrecondition, FieldViolation
from post_management.domain.reasons import Reason

# X sets no limit on thread length; this keeps one publish well inside a claim's lease.
MAX_FOLLOW_UPS = 24


def thread_violations(text: str, thread: list[str], prefix: str = "post") -> list[FieldViolation]:
    """Rules for the follow-up segments: each is a post's text of its own, none empty,
    and no two segments alike (X refuses the second as duplicate content, and the
    reconciler tells segments apart by their text)."""
    if len(thread) > MAX_FOLLOW_UPS:
        # Too many: refused by length alone, no segment is weighed.
        return [FieldViolation(f"{prefix}.thread", f"at most {MAX_FOLLOW_UPS} follow-up segments")]
    problems: list[FieldViolation] = []
    seen = {normalize_text(text)} if text.strip() else set()
    for index, segment in enumerate(thread):
        field = f"{prefix}.thread[{index}]"
        if not segment.strip():
            problems.append(FieldViolation(field, "a segment needs text"))
            continue
        for problem in content_violations(segment, [], "", prefix="segment"):
            problems.append(FieldViolation(field, problem.description))
        normalized = normalize_text(segment)
        if normalized in seen:
            problems.append(FieldViolation(field, "repeats an earlier segment's text"))
        seen.add(normalized)
    return problems


def ensure_published_segments_kept(
    published: int,
    before: tuple[list[str], str, list[str], list[str]],
    after: tuple[list[str], str, list[str], list[str]],
) -> None:
    """Segments already on X cannot change: a resumed publish replies to them.

    `before` and `after` are (segments, reply target, media ids, attachment ids).
    """
    if published == 0:
        return
    (old_segments, old_reply, old_media, old_attachments) = before
    (new_segments, new_reply, new_media, new_attachments) = after
    first_changed = (old_reply, old_media, old_attachments) != (
        new_reply,
        new_media,
        new_attachments,
    )
    if first_changed or new_segments[:published] != old_segments[:published]:
        raise FailedPrecondition(
            f"the first {published} segment(s) are already on X and cannot change",
            reason=Reason.SEGMENTS_ALREADY_PUBLISHED,
            metadata={"published_segments": str(published)},
        )


def ensure_account_kept(published: int, old_account: UUID, new_account: UUID) -> None:
    """The rest of a partly published thread must come from the same account: it
    replies to that account's posts, and the reconciler reads that timeline."""
    if published and old_account != new_account:
        raise FailedPrecondition(
            f"the first {published} segment(s) are on X from this account; "
            "the rest cannot move to another",
            reason=Reason.SEGMENTS_ALREADY_PUBLISHED,
            metadata={"published_segments": str(published)},
        )
