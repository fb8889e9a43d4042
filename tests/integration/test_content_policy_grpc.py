"""The account's content policy over real gRPC: findings in the answers of CreatePost,
UpdatePost and SchedulePost and in the audit trail (warn, the default), a refusal with
the findings in the error details (refuse), and nothing at all (off)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import Engine, text
from xmp.posts.v1 import (
    account_pb2,
    account_service_pb2,
    post_pb2,
    post_service_pb2,
    scheduling_service_pb2,
    scheduling_service_pb2_grpc,
)

from post_management.adapters.db.engine import make_engine
from tests.integration.grpc_fixtures import Client, error_details

STUFFED = "Spring sale #sale #deal #discount #promo #offer #shopping #cheap"
CLEAN = "Spring sale: 20% off every plan until Sunday."


def _account(client: Client, policy: int | None = None) -> account_pb2.Account:
    rules = account_pb2.PostingRules(content_policy=policy) if policy is not None else None
    return client.create_account(posting_rules=rules) if rules else client.create_account()


def _audit(client: Client) -> list[account_service_pb2.AuditEvent]:
    page = client.accounts.ListAuditEvents(
        account_service_pb2.ListAuditEventsRequest(user_id=client.subject, page_size=100),
        metadata=client.metadata,
    )
    return list(page.audit_events)


def test_warn_is_the_default_and_findings_come_back_and_are_audited(alice: Client) -> None:
    account = _account(alice)
    assert account.posting_rules.content_policy == account_pb2.CONTENT_POLICY_UNSPECIFIED
    created = alice.create_post(account.id, STUFFED)
    (finding,) = created.content_findings
    assert finding.rule == "HASHTAG_STUFFING"
    assert finding.excerpt.startswith("#sale #deal") and 0.5 <= finding.score <= 1
    # The findings belong to the answer, not to the stored post.
    fetched = alice.posts.GetPost(
        post_service_pb2.GetPostRequest(post_id=created.id), metadata=alice.metadata
    )
    assert list(fetched.content_findings) == []
    audited = [e for e in _audit(alice) if e.action == "post.content_findings"]
    assert len(audited) == 1 and audited[0].resource_id == created.id
    assert audited[0].actor == "user:alice"
    assert audited[0].after["findings"][0]["rule"] == "HASHTAG_STUFFING"

    clean_post = alice.create_post(account.id, CLEAN)
    assert list(clean_post.content_findings) == []
    updated = alice.posts.UpdatePost(
        post_service_pb2.UpdatePostRequest(
            post=post_pb2.Post(id=clean_post.id, text="BUY NOW!!!!!!!!!!!!!!!!"),
            update_mask=FieldMask(paths=["text"]),
        ),
        metadata=alice.metadata,
    )
    assert [f.rule for f in updated.content_findings] == ["REPEATED_CHARACTERS"]

    scheduling = scheduling_service_pb2_grpc.PostSchedulingServiceStub(alice.channel)
    when = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    scheduled = scheduling.SchedulePost(
        scheduling_service_pb2.SchedulePostRequest(
            post_id=created.id, user_id="alice", scheduled_for=when.isoformat()
        ),
        metadata=alice.metadata,
    )
    assert [f.rule for f in scheduled.post.content_findings] == ["HASHTAG_STUFFING"]
    actions = [e.action for e in _audit(alice)]
    assert actions.count("post.content_findings") == 3


def _schedule(
    client: Client, post_id: str, days: int
) -> scheduling_service_pb2.SchedulePostResponse:
    scheduling = scheduling_service_pb2_grpc.PostSchedulingServiceStub(client.channel)
    when = (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)
    return scheduling.SchedulePost(
        scheduling_service_pb2.SchedulePostRequest(
            post_id=post_id, user_id=client.subject, scheduled_for=when.isoformat()
        ),
        metadata=client.metadata,
    )


def _stored_screening(engine: Engine, post_id: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(
            text("SELECT content_screening FROM posts WHERE id = :id"), {"id": post_id}
        ).scalar_one()


def test_findings_are_kept_with_the_post_and_screened_again_when_they_do_not_count(
    alice: Client, machine_database: str
) -> None:
    account = _account(alice)
    stuffed = alice.create_post(account.id, STUFFED)
    clean_post = alice.create_post(account.id, CLEAN)
    engine = make_engine(machine_database)
    try:
        kept = _stored_screening(engine, stuffed.id)
        assert [f["rule"] for f in kept["findings"]] == ["HASHTAG_STUFFING"]
        assert _stored_screening(engine, clean_post.id)["findings"] == []
        with engine.begin() as connection:
            # As stored before findings were kept with posts, and a text changed by a
            # writer that did not screen it: neither may pass unchecked.
            connection.execute(
                text("UPDATE posts SET content_screening = NULL WHERE id = :id"),
                {"id": stuffed.id},
            )
            connection.execute(
                text("UPDATE posts SET text = :text WHERE id = :id"),
                {"text": STUFFED, "id": clean_post.id},
            )
        for days, post_id in ((2, stuffed.id), (4, clean_post.id)):  # a day apart: no duplicate
            scheduled = _schedule(alice, post_id, days)
            assert [f.rule for f in scheduled.post.content_findings] == ["HASHTAG_STUFFING"]
        # Both keep what the schedule found, under the same key as a post written so.
        for post_id in (stuffed.id, clean_post.id):
            assert _stored_screening(engine, post_id) == kept
        audited = [e for e in _audit(alice) if e.action == "post.content_findings"]
        assert sorted(e.resource_id for e in audited) == sorted(
            [stuffed.id, stuffed.id, clean_post.id]
        )
        # Under OFF nothing is screened and nothing kept.
        off = alice.create_account(
            "1002",
            posting_rules=account_pb2.PostingRules(content_policy=account_pb2.CONTENT_POLICY_OFF),
        )
        unscreened = alice.create_post(off.id, STUFFED)
        with engine.connect() as connection:
            stored = connection.execute(
                text("SELECT content_screening IS NULL FROM posts WHERE id = :id"),
                {"id": unscreened.id},
            ).scalar_one()
        assert stored is True
    finally:
        engine.dispose()


def test_refuse_answers_failed_precondition_with_the_findings(alice: Client) -> None:
    account = _account(alice, account_pb2.CONTENT_POLICY_REFUSE)
    assert account.posting_rules.content_policy == account_pb2.CONTENT_POLICY_REFUSE
    with pytest.raises(grpc.RpcError) as caught:
        alice.create_post(account.id, "Free followers: http://adf.ly/1a2b3c")
    error = caught.value
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    reason, _ = error_details(error)
    assert reason == "CONTENT_POLICY"
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    failures = [d for d in status.details if d.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR)]
    failure = error_details_pb2.PreconditionFailure()
    failures[0].Unpack(failure)
    assert [(v.type, v.subject, v.description) for v in failure.violations] == [
        ("SPAM_SHORTENER", "http://adf.ly/1a2b3c", "score 1.0")
    ]
    listed = alice.posts.ListPosts(post_service_pb2.ListPostsRequest(), metadata=alice.metadata)
    assert list(listed.posts) == []  # nothing was stored

    post = alice.create_post(account.id, CLEAN)
    with pytest.raises(grpc.RpcError) as caught:
        alice.posts.UpdatePost(
            post_service_pb2.UpdatePostRequest(
                post=post_pb2.Post(id=post.id, thread=["@a @b @c @d @e @f @g look"]),
                update_mask=FieldMask(paths=["thread"]),
            ),
            metadata=alice.metadata,
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(caught.value)[0] == "CONTENT_POLICY"


def test_off_checks_nothing(alice: Client) -> None:
    account = _account(alice, account_pb2.CONTENT_POLICY_OFF)
    created = alice.create_post(account.id, STUFFED)
    assert list(created.content_findings) == []
    assert "post.content_findings" not in [e.action for e in _audit(alice)]


def test_a_policy_can_be_changed_and_an_unknown_one_is_refused(alice: Client) -> None:
    account = _account(alice)
    updated = alice.accounts.UpdateAccount(
        account_service_pb2.UpdateAccountRequest(
            account=account_pb2.Account(
                id=account.id,
                posting_rules=account_pb2.PostingRules(
                    content_policy=account_pb2.CONTENT_POLICY_REFUSE
                ),
            ),
            update_mask=FieldMask(paths=["posting_rules"]),
        ),
        metadata=alice.metadata,
    )
    assert updated.posting_rules.content_policy == account_pb2.CONTENT_POLICY_REFUSE
    with pytest.raises(grpc.RpcError) as caught:
        alice.create_post(account.id, STUFFED)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as caught:
        alice.accounts.UpdateAccount(
            account_service_pb2.UpdateAccountRequest(
                account=account_pb2.Account(
                    id=account.id, posting_rules=account_pb2.PostingRules(content_policy=9)
                ),
                update_mask=FieldMask(paths=["posting_rules"]),
            ),
            metadata=alice.metadata,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
