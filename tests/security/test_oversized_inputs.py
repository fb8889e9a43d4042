"""Generated oversized lists and rule sets, sent over gRPC to a running server: each
is refused with INVALID_ARGUMENT, naming the list, in little CPU time (this
process's, which includes the in-process server), with a small error."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xmp.posts.v1 import (
    account_pb2,
    account_service_pb2,
    post_pb2,
    post_service_pb2,
    scheduling_service_pb2_grpc,
)
from xmp.posts.v1 import scheduling_service_pb2 as pb

from post_management.domain.errors import MAX_FIELD_VIOLATIONS
from post_management.domain.posting_rules import MAX_SLOTS, MAX_WEEKDAYS
from tests.integration.grpc_fixtures import Client, error_details
from tests.security.support import cpu_time
from tests.support.harness import RunningServer

CPU_BOUND_SECONDS = 1.0
DEADLINE = 120.0
ACCOUNT_ID = str(uuid.UUID(int=1))


def _text(rng: random.Random) -> str:
    return rng.choice(["09:00", "25:61", "", "x" * rng.randint(1, 40), "\u202e12:00", "07:3"])


def _slots(rng: random.Random, count: int, weekdays: int | None = None) -> account_pb2.PostingRules:
    return account_pb2.PostingRules(
        slots=[
            account_pb2.TimeSlot(
                weekdays=[
                    rng.randint(-10, 10)
                    for _ in range(weekdays if weekdays is not None else rng.randint(0, 7))
                ],
                time=_text(rng),
            )
            for _ in range(count)
        ]
    )


def _strings(rng: random.Random, count: int) -> list[str]:
    return [rng.choice(["1", "x", str(uuid.uuid4()), "\x00", "9" * 30]) for _ in range(count)]


Call = Callable[[Client], Any]


def _create_account(rules: account_pb2.PostingRules) -> Call:
    return lambda c: c.accounts.CreateAccount(
        account_service_pb2.CreateAccountRequest(
            account=account_pb2.Account(
                user_id=c.subject, handle="h", x_user_id="1", posting_rules=rules
            )
        ),
        metadata=c.metadata,
        timeout=DEADLINE,
    )


def _update_account(rules: account_pb2.PostingRules) -> Call:
    # A random account id: sizes are refused before the account is even looked up.
    return lambda c: c.accounts.UpdateAccount(
        account_service_pb2.UpdateAccountRequest(
            account=account_pb2.Account(id=str(uuid.uuid4()), posting_rules=rules)
        ),
        metadata=c.metadata,
        timeout=DEADLINE,
    )


def _create_post(**fields: Any) -> Call:
    return lambda c: c.posts.CreatePost(
        post_service_pb2.CreatePostRequest(
            post=post_pb2.Post(user_id=c.subject, account_id=ACCOUNT_ID, text="hi", **fields)
        ),
        metadata=c.metadata,
        timeout=DEADLINE,
    )


def _batch(count: int) -> Call:
    items = [pb.SchedulePostRequest(post_id=str(uuid.uuid4())) for _ in range(count)]
    return lambda c: scheduling_service_pb2_grpc.PostSchedulingServiceStub(
        c.channel
    ).BatchSchedulePosts(
        pb.BatchSchedulePostsRequest(user_id=c.subject, requests=items, all_or_nothing=True),
        metadata=c.metadata,
        timeout=DEADLINE,
    )


@st.composite
def oversized(draw: st.DrawFn) -> tuple[str, Call]:
    """(the list field the refusal must name, the call)."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    kind = draw(
        st.sampled_from(
            ["slots", "update slots", "weekdays", "media_ids", "attachment_ids", "thread", "batch"]
        )
    )
    if kind in ("slots", "update slots"):
        rules = _slots(rng, draw(st.integers(MAX_SLOTS + 1, 40_000)))
        call = _create_account(rules) if kind == "slots" else _update_account(rules)
        return "account.posting_rules.slots", call
    if kind == "weekdays":
        at = draw(st.integers(0, MAX_SLOTS - 1))
        rules = _slots(rng, at)
        rules.slots.append(
            account_pb2.TimeSlot(
                weekdays=[
                    rng.randint(-3, 9) for _ in range(rng.randint(MAX_WEEKDAYS + 1, 200_000))
                ],
                time="09:00",
            )
        )
        return f"account.posting_rules.slots[{at}].weekdays", _create_account(rules)
    if kind == "batch":
        return "requests", _batch(draw(st.integers(101, 20_000)))
    count = draw(st.integers({"thread": 25}.get(kind, 5), 50_000))
    return f"post.{kind}", _create_post(**{kind: _strings(rng, count)})


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=oversized())
def test_oversized_lists_get_a_fast_invalid_argument(
    server: RunningServer, case: tuple[str, Call]
) -> None:
    field, call = case
    with Client(server, "alice") as client, cpu_time() as spent:
        try:
            call(client)
        except grpc.RpcError as error:
            failure: Any = error
        else:
            raise AssertionError(f"an oversized {field} was accepted")
    assert failure.code() == grpc.StatusCode.INVALID_ARGUMENT, failure.details()
    _, violations = error_details(failure)
    assert [name for name, _ in violations] == [field]
    assert len(violations) <= MAX_FIELD_VIOLATIONS
    assert spent.seconds < CPU_BOUND_SECONDS, f"{field}: {spent.seconds:.2f} s of CPU"
