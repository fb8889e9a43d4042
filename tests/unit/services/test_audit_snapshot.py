"""The audit form of domain objects: the same JSON as the dataclasses' asdict made
safe, secrets and the content screen's notes left out."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from uuid import UUID

from post_management.domain.account import Account, Credentials
from post_management.domain.campaigns import Campaign
from post_management.domain.content_rules import Finding, Rule, Screening
from post_management.domain.media import Media, MediaKind
from post_management.domain.post import Post, PostState, Priority
from post_management.services.shared.common import snapshot

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _safe(value: Any) -> Any:
    if isinstance(value, datetime | UUID | Enum):
        return str(value)
    if isinstance(value, dict):
        return {key: _safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_safe(item) for item in value]
    return value


def reference(resource: Any, left_out: frozenset[str]) -> dict[str, Any]:
    """The audit form as it was first written: asdict, then made JSON-safe."""
    data = {k: v for k, v in asdict(resource).items() if k not in left_out}
    if "credentials" in asdict(resource):
        data["has_credentials"] = getattr(resource, "credentials", None) is not None
    result: dict[str, Any] = _safe(data)
    return result


def test_a_post_in_full_is_audited_as_before_without_its_screening() -> None:
    post = Post(
        id=uuid.uuid4(),
        user_id="alice",
        account_id=uuid.uuid4(),
        text="hello",
        created_at=NOW,
        updated_at=NOW,
        media_ids=["1", "2"],
        reply_to_x_post_id="9",
        attachment_ids=[uuid.uuid4()],
        thread=["two", "three"],
        segment_x_post_ids=["11"],
        state=PostState.SCHEDULED,
        priority=Priority.HIGH,
        scheduled_for=NOW,
        timezone="Europe/Paris",
        x_post_id="11",
        attempt_count=2,
        last_error="timeout",
        version=7,
        campaign_id=uuid.uuid4(),
        screening=Screening("k", (Finding(Rule.SPAM_SHORTENER, "http://adf.ly/x", 1.0),)),
    )
    audited = snapshot(post)
    assert audited == reference(post, frozenset({"screening"}))
    assert "screening" not in audited and audited["priority"] == str(Priority.HIGH)
    assert list(audited) == [name for name in asdict(post) if name != "screening"]


def test_an_account_is_audited_as_before_without_its_credentials() -> None:
    account = Account(
        id=uuid.uuid4(),
        user_id="alice",
        handle="h",
        x_user_id="1",
        created_at=NOW,
        updated_at=NOW,
        posting_rules={"quiet_hours": [{"start": "22:00", "end": "07:00"}], "min_interval": 30},
        credentials=Credentials("token", "secret"),
    )
    audited = snapshot(account)
    assert audited == reference(account, frozenset({"credentials"}))
    assert "credentials" not in audited and audited["has_credentials"] is True
    assert "token" not in repr(audited)
    # The stored rules are copied, not shared.
    audited["posting_rules"]["quiet_hours"][0]["start"] = "23:00"
    assert account.posting_rules["quiet_hours"][0]["start"] == "22:00"


def test_campaigns_and_media_are_audited_as_before() -> None:
    campaign = Campaign(uuid.uuid4(), "alice", "Launch", NOW, NOW, starts_at=NOW)
    media = Media(uuid.uuid4(), "alice", "image/png", MediaKind.IMAGE, 10, NOW)
    for resource in (campaign, media):
        assert snapshot(resource) == reference(resource, frozenset())
