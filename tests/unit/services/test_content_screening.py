"""A post's texts are screened when they are written and the findings kept with it:
scheduling applies the account's policy of the moment to them without the classifier,
and never to findings of another text, rule set or model (memory unit of work)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from post_management.domain.account import Account
from post_management.domain.auth import Principal, Role
from post_management.domain.content_rules import Finding, Rule, Screening, screening_key
from post_management.domain.errors import FailedPrecondition
from post_management.domain.post import Post, PostState
from post_management.domain.reasons import Reason
from post_management.domain.requested_time import parse_requested_time
from post_management.services.posts.content_screening import ContentScreen
from post_management.services.posts.posts import NewPost, PostPatch, PostService
from post_management.services.scheduling.scheduling import SchedulingService
from post_management.services.scheduling.support import ScheduleRequest
from tests.unit.services.engine_world import EngineWorld

ALICE = Principal("alice", Role.USER)
OFFENSIVE = "what an awful, awful product"
STUFFED = "sale #a #b #c #d #e #f"
CLEAN = "Spring sale: 20% off every plan until Sunday."


class CountingScorer:
    """Texts naming "awful" are offensive; every text it is asked to score is counted."""

    def __init__(self, model: str = "counting-1") -> None:
        self.model = model
        self.scored: list[str] = []

    def scores(self, texts: Sequence[str]) -> list[float]:
        self.scored.extend(texts)
        return [0.97 if "awful" in text else 0.02 for text in texts]


class Services:
    def __init__(self, world: EngineWorld, scorer: CountingScorer) -> None:
        self.world = world
        self.scorer = scorer
        screen = ContentScreen(scorer)
        self.posts = PostService(world.async_uow, world.clock, screen=screen)
        self.scheduling = SchedulingService(world.async_uow, world.clock, screen=screen)

    def account(self, policy: str = "") -> Account:
        account = self.world.account()
        if policy:
            self.set_policy(account, policy)
        return account

    def set_policy(self, account: Account, policy: str) -> None:
        self.world.store.tables.accounts[account.id].posting_rules = {
            "content_policy": f"CONTENT_POLICY_{policy}"
        }

    def schedule(self, post_id: uuid.UUID, hours: int = 2) -> Any:
        due = self.world.clock.now() + timedelta(hours=hours)
        request = ScheduleRequest(
            post_id, "alice", scheduled_for=parse_requested_time(due.isoformat())
        )
        return asyncio.run(self.scheduling.schedule(ALICE, request))

    def stored(self, post_id: uuid.UUID) -> Post:
        return self.world.store.tables.posts[post_id]

    def audited_findings(self, post_id: uuid.UUID) -> list[Any]:
        return [
            entry.after["findings"]
            for _, entry in self.world.store.tables.audit
            if entry.action == "post.content_findings"
            and entry.resource_id == post_id
            and entry.after is not None
        ]


@pytest.fixture
def scorer() -> CountingScorer:
    return CountingScorer()


@pytest.fixture
def svc(scorer: CountingScorer) -> Services:
    return Services(EngineWorld(), scorer)


def rules(findings: Sequence[Finding]) -> list[Rule]:
    return [finding.rule for finding in findings]


def test_scheduling_reports_the_findings_kept_at_create_without_the_classifier(
    svc: Services,
) -> None:
    account = svc.account()
    created = asyncio.run(
        svc.posts.create_screened(
            ALICE, NewPost("alice", account.id, OFFENSIVE, [], thread=[STUFFED])
        )
    )
    assert rules(created.findings) == [Rule.OFFENSIVE_LANGUAGE, Rule.HASHTAG_STUFFING]
    assert svc.scorer.scored  # screened once, at create
    kept = svc.stored(created.post.id).screening
    assert kept is not None and list(kept.findings) == created.findings
    svc.scorer.scored.clear()

    result = svc.schedule(created.post.id)
    again = svc.schedule(created.post.id, hours=3)

    assert svc.scorer.scored == []  # neither schedule ran the classifier
    assert result.findings == created.findings and again.findings == created.findings
    # One audit row of findings per write, the same findings each time.
    audited = svc.audited_findings(created.post.id)
    assert len(audited) == 3 and audited[1] == audited[0] == audited[2]
    assert result.post.state is PostState.SCHEDULED


def test_an_edited_text_is_screened_again_and_scheduling_reports_only_its_findings(
    svc: Services,
) -> None:
    account = svc.account()
    post = asyncio.run(svc.posts.create(ALICE, NewPost("alice", account.id, OFFENSIVE, [])))
    assert rules(svc.schedule(post.id).findings) == [Rule.OFFENSIVE_LANGUAGE]

    edited = asyncio.run(svc.posts.update_screened(ALICE, post.id, PostPatch(text=STUFFED)))
    assert rules(edited.findings) == [Rule.HASHTAG_STUFFING]
    svc.scorer.scored.clear()
    assert rules(svc.schedule(post.id).findings) == [Rule.HASHTAG_STUFFING]
    assert svc.scorer.scored == []

    asyncio.run(svc.posts.update(ALICE, post.id, PostPatch(thread=[OFFENSIVE])))
    assert rules(svc.schedule(post.id).findings) == [Rule.HASHTAG_STUFFING, Rule.OFFENSIVE_LANGUAGE]
    asyncio.run(svc.posts.update(ALICE, post.id, PostPatch(text=CLEAN, thread=[])))
    assert svc.schedule(post.id).findings == []
    assert svc.stored(post.id).screening == Screening(screening_key([CLEAN], "counting-1"))


def test_a_text_changed_without_screening_is_screened_when_scheduled(svc: Services) -> None:
    account = svc.account()
    post = asyncio.run(svc.posts.create(ALICE, NewPost("alice", account.id, CLEAN, [])))
    # A writer that changes the text but not the kept screening (none does today):
    # the screening's key no longer matches, so its (empty) findings are not used.
    svc.stored(post.id).text = OFFENSIVE
    svc.scorer.scored.clear()
    result = svc.schedule(post.id)
    assert rules(result.findings) == [Rule.OFFENSIVE_LANGUAGE]
    assert OFFENSIVE in svc.scorer.scored
    kept = svc.stored(post.id).screening
    assert kept is not None and kept.key == screening_key([OFFENSIVE], "counting-1")


def test_a_post_stored_without_a_screening_is_screened_when_scheduled_and_keeps_it(
    svc: Services,
) -> None:
    account = svc.account()
    # As stored before screenings were kept (or by a path that screens nothing).
    old = svc.world.post(account, OFFENSIVE, thread=(STUFFED,))
    svc.stored(old.id).state = PostState.DRAFT
    assert svc.stored(old.id).screening is None

    first = svc.schedule(old.id)
    assert rules(first.findings) == [Rule.OFFENSIVE_LANGUAGE, Rule.HASHTAG_STUFFING]
    assert OFFENSIVE in svc.scorer.scored
    kept = svc.stored(old.id).screening
    assert kept is not None and list(kept.findings) == first.findings
    svc.scorer.scored.clear()
    assert svc.schedule(old.id, hours=5).findings == first.findings
    assert svc.scorer.scored == []


def test_a_post_written_under_off_is_screened_when_a_later_policy_asks(svc: Services) -> None:
    account = svc.account("OFF")
    created = asyncio.run(
        svc.posts.create_screened(ALICE, NewPost("alice", account.id, OFFENSIVE, []))
    )
    assert created.findings == [] and svc.scorer.scored == []
    assert svc.stored(created.post.id).screening is None
    assert svc.schedule(created.post.id).findings == []
    assert svc.scorer.scored == []

    svc.set_policy(account, "WARN")
    assert rules(svc.schedule(created.post.id, hours=3).findings) == [Rule.OFFENSIVE_LANGUAGE]


def test_an_edit_under_off_drops_the_screening_of_the_old_text(svc: Services) -> None:
    account = svc.account()
    post = asyncio.run(svc.posts.create(ALICE, NewPost("alice", account.id, OFFENSIVE, [])))
    svc.set_policy(account, "OFF")
    asyncio.run(svc.posts.update(ALICE, post.id, PostPatch(text=CLEAN)))
    assert svc.stored(post.id).screening is None  # no excerpt of the old text stays
    svc.set_policy(account, "WARN")
    assert svc.schedule(post.id).findings == []


def test_a_refusing_policy_refuses_the_schedule_from_the_kept_findings(svc: Services) -> None:
    account = svc.account()
    post = asyncio.run(svc.posts.create(ALICE, NewPost("alice", account.id, STUFFED, [])))
    svc.set_policy(account, "REFUSE")
    audit_rows, version = len(svc.world.store.tables.audit), svc.stored(post.id).version
    svc.scorer.scored.clear()
    with pytest.raises(FailedPrecondition) as refused:
        svc.schedule(post.id)
    assert refused.value.reason is Reason.CONTENT_POLICY
    assert [v.type for v in refused.value.violations] == ["HASHTAG_STUFFING"]
    assert svc.scorer.scored == []
    stored = svc.stored(post.id)
    assert (stored.state, stored.version) == (PostState.DRAFT, version)
    assert len(svc.world.store.tables.audit) == audit_rows


def test_moving_a_post_to_a_refusing_account_uses_its_kept_findings(svc: Services) -> None:
    warned, refusing = svc.account(), svc.account("REFUSE")
    post = asyncio.run(svc.posts.create(ALICE, NewPost("alice", warned.id, OFFENSIVE, [])))
    svc.scorer.scored.clear()
    with pytest.raises(FailedPrecondition):
        asyncio.run(svc.posts.update(ALICE, post.id, PostPatch(account_id=refusing.id)))
    assert svc.scorer.scored == []
    assert svc.stored(post.id).account_id == warned.id


def test_findings_of_another_model_are_screened_again(svc: Services) -> None:
    account = svc.account()
    post = asyncio.run(svc.posts.create(ALICE, NewPost("alice", account.id, OFFENSIVE, [])))
    newer = CountingScorer("counting-2")
    scheduling = SchedulingService(
        svc.world.async_uow, svc.world.clock, screen=ContentScreen(newer)
    )
    due = svc.world.clock.now() + timedelta(hours=2)
    request = ScheduleRequest(post.id, "alice", scheduled_for=parse_requested_time(due.isoformat()))
    result = asyncio.run(scheduling.schedule(ALICE, request))
    assert rules(result.findings) == [Rule.OFFENSIVE_LANGUAGE]
    assert OFFENSIVE in newer.scored
    kept = svc.stored(post.id).screening
    assert kept is not None and kept.key == screening_key([OFFENSIVE], "counting-2")


def test_the_key_names_texts_in_order_and_the_model() -> None:
    key = screening_key(["a", "b"], "m")
    assert key == screening_key(["a", "b"], "m")
    assert len({key, screening_key(["b", "a"], "m"), screening_key(["ab"], "m")}) == 3
    assert key != screening_key(["a", "b"], "n") and key != screening_key(["a", "b"], "")
    assert screening_key(["a", "b"], "") != screening_key(["a", "b", ""], "")
