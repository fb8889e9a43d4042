"""Lists in requests are bounded by length before any element is read, one error
names at most 20 fields, and posting rules cost little however they are sent
(docs/security.md, "Input limits"). Over gRPC against a running server; CPU is
this process's, which includes the in-process server."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from xmp.posts.v1 import (
    account_pb2,
    account_service_pb2,
    post_pb2,
    post_service_pb2,
    scheduling_service_pb2_grpc,
)
from xmp.posts.v1 import scheduling_service_pb2 as pb

from post_management.domain.errors import MAX_FIELD_VIOLATIONS
from post_management.domain.posting_rules import MAX_SLOTS
from post_management.services.scheduling import support as scheduling_support
from tests.integration.grpc_fixtures import Client, error_details
from tests.security.support import cpu_time

# Generous: a refused request costs milliseconds; before the limits 8,000 slots took
# about 8 s of CPU and 40,000 took minutes.
CPU_BOUND_SECONDS = 1.0
DEADLINE = 120.0


def _rules(slots: int, weekdays: list[int] | None = None, time: str = "09:00") -> Any:
    return account_pb2.PostingRules(
        slots=[
            account_pb2.TimeSlot(
                weekdays=weekdays if weekdays is not None else [1 + i % 7],
                time=f"{i // 60 % 24:02d}:{i % 60:02d}" if time == "spread" else time,
            )
            for i in range(slots)
        ]
    )


def _refused(call: Any) -> tuple[str, list[tuple[str, str]], dict[str, str]]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    reason, violations = error_details(caught.value)
    return reason, violations, dict(caught.value.trailing_metadata() or ())


@pytest.mark.parametrize("count", [8_000, 40_000])
def test_oversized_rule_sets_are_refused_fast(alice: Client, count: int) -> None:
    account = alice.create_account()
    rules = _rules(count, weekdays=[1, 2, 3, 4, 5, 6, 7], time="spread")
    with cpu_time() as create:
        reason, violations, _ = _refused(
            lambda: alice.accounts.CreateAccount(
                account_service_pb2.CreateAccountRequest(
                    account=account_pb2.Account(
                        user_id="alice", handle="big", x_user_id="2002", posting_rules=rules
                    )
                ),
                metadata=alice.metadata,
                timeout=DEADLINE,
            )
        )
    assert reason == "INVALID_POSTING_RULES"
    assert violations == [
        ("account.posting_rules.slots", f"at most {MAX_SLOTS} slots, got {count}")
    ]
    assert create.seconds < CPU_BOUND_SECONDS

    with cpu_time() as update:
        reason, _, _ = _refused(
            lambda: alice.accounts.UpdateAccount(
                account_service_pb2.UpdateAccountRequest(
                    account=account_pb2.Account(id=account.id, posting_rules=rules)
                ),
                metadata=alice.metadata,
                timeout=DEADLINE,
            )
        )
    assert reason == "INVALID_POSTING_RULES"
    assert update.seconds < CPU_BOUND_SECONDS


def test_a_slot_names_each_weekday_at_most_once(alice: Client) -> None:
    rules = _rules(1, weekdays=[1] * 200_000)
    with cpu_time() as spent:
        reason, violations, _ = _refused(lambda: alice.create_account(posting_rules=rules))
    assert reason == "INVALID_POSTING_RULES"
    assert [field for field, _ in violations] == ["account.posting_rules.slots[0].weekdays"]
    assert spent.seconds < CPU_BOUND_SECONDS


def test_repeated_slots_are_merged(alice: Client) -> None:
    account = alice.create_account(posting_rules=_rules(MAX_SLOTS, weekdays=[3, 1, 3]))
    assert [(list(s.weekdays), s.time) for s in account.posting_rules.slots] == [([1, 3], "09:00")]


def test_update_checks_ownership_before_validating(alice: Client, bob: Client) -> None:
    """A stranger's token with a random or foreign account id learns nothing from
    validation: what the edge found wrong is told only to the account's owner."""
    bad = account_pb2.PostingRules(
        slots=[account_pb2.TimeSlot(weekdays=[9], time="25:99")], min_interval_minutes=-1
    )

    def update(client: Client, account_id: str) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as caught:
            client.accounts.UpdateAccount(
                account_service_pb2.UpdateAccountRequest(
                    account=account_pb2.Account(id=account_id, handle="!!", posting_rules=bad)
                ),
                metadata=client.metadata,
            )
        return caught.value

    assert update(alice, str(uuid.uuid4())).code() == grpc.StatusCode.NOT_FOUND
    bobs = bob.create_account()
    assert update(alice, bobs.id).code() == grpc.StatusCode.PERMISSION_DENIED
    # The owner gets the validation errors.
    own = update(bob, bobs.id)
    assert own.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_one_error_names_at_most_twenty_fields(alice: Client) -> None:
    # Within every size limit, yet each slot is wrong.
    rules = _rules(MAX_SLOTS, weekdays=[8], time="24:00")
    reason, violations, _ = _refused(lambda: alice.create_account(posting_rules=rules))
    assert reason == "INVALID_POSTING_RULES"
    assert len(violations) == MAX_FIELD_VIOLATIONS
    assert violations[0][0] == "account.posting_rules.slots[0].weekdays[0]"


def _post(client: Client, account_id: str, **fields: Any) -> Any:
    return lambda: client.posts.CreatePost(
        post_service_pb2.CreatePostRequest(
            post=post_pb2.Post(user_id=client.subject, account_id=account_id, **fields)
        ),
        metadata=client.metadata,
        timeout=DEADLINE,
    )


@pytest.mark.parametrize(
    ("field", "values", "limit", "expected_reason"),
    [
        ("media_ids", ["x"] * 50_000, 4, "INVALID_ARGUMENT"),
        ("attachment_ids", ["not-a-uuid"] * 50_000, 4, "INVALID_MEDIA"),
        ("thread", [" "] * 20_000, 24, "INVALID_ARGUMENT"),
    ],
)
def test_post_lists_are_checked_by_length_first(
    alice: Client, field: str, values: list[str], limit: int, expected_reason: str
) -> None:
    account = alice.create_account()
    with cpu_time() as spent:
        reason, violations, _ = _refused(_post(alice, account.id, text="hi", **{field: values}))
    assert reason == expected_reason
    assert [name for name, _ in violations] == [f"post.{field}"]
    assert str(limit) in violations[0][1]
    assert spent.seconds < CPU_BOUND_SECONDS

    # UpdatePost checks the same way.
    post = alice.create_post(account.id)
    reason, violations, _ = _refused(
        lambda: alice.posts.UpdatePost(
            post_service_pb2.UpdatePostRequest(post=post_pb2.Post(id=post.id, **{field: values})),
            metadata=alice.metadata,
            timeout=DEADLINE,
        )
    )
    assert [name for name, _ in violations] == [f"post.{field}"]


def test_batch_items_are_counted_before_they_are_parsed(alice: Client) -> None:
    stub = scheduling_service_pb2_grpc.PostSchedulingServiceStub(alice.channel)
    items = [pb.SchedulePostRequest(post_id="not-a-uuid") for _ in range(20_000)]
    reason, violations, _ = _refused(
        lambda: stub.BatchSchedulePosts(
            pb.BatchSchedulePostsRequest(user_id="alice", requests=items, all_or_nothing=True),
            metadata=alice.metadata,
            timeout=DEADLINE,
        )
    )
    assert reason == "BATCH_TOO_LARGE"
    assert [name for name, _ in violations] == ["requests"]


@pytest.mark.parametrize("all_or_nothing", [True, False])
def test_a_batch_parses_stored_rules_once(
    alice: Client, monkeypatch: pytest.MonkeyPatch, all_or_nothing: bool
) -> None:
    account = alice.create_account(posting_rules=_rules(24 * 7, time="spread"))
    posts = [alice.create_post(account.id, f"post {i}") for i in range(6)]
    parses = []
    original = scheduling_support.posting_rules_from_json

    def counted(*args: Any, **kwargs: Any) -> Any:
        parses.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(scheduling_support, "posting_rules_from_json", counted)
    stub = scheduling_service_pb2_grpc.PostSchedulingServiceStub(alice.channel)
    answer = stub.BatchSchedulePosts(
        pb.BatchSchedulePostsRequest(
            user_id="alice",
            requests=[pb.SchedulePostRequest(post_id=post.id) for post in posts],
            all_or_nothing=all_or_nothing,
        ),
        metadata=alice.metadata,
    )
    assert all(result.HasField("response") for result in answer.results), answer
    assert len(parses) == 1
