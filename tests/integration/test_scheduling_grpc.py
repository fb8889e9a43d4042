"""PostSchedulingService over real gRPC and PostgreSQL: the REST bodies of the contract
sent as gRPC requests, DST rules, posting rules, listing, batches and the outbox."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import grpc
import pytest
from xmp.posts.v1 import account_pb2, post_pb2

from tests.integration.grpc_fixtures import Client, error_details
from tests.integration.scheduling_support import (
    Database,
    Scheduler,
    at_utc,
    day_ahead,
    error_info,
    failure,
    next_us_transition,
    pb,
    rules,
    utc,
    z,
)
from tests.support.harness import RunningServer

NY = ZoneInfo("America/New_York")


@pytest.fixture
def db(clean: RunningServer) -> Iterator[Database]:
    database = Database(clean)
    yield database
    database.engine.dispose()


@pytest.fixture
def sched(alice: Client) -> Scheduler:
    return Scheduler(alice)


def test_instant_and_wall_time_with_priority_and_outbox(
    alice: Client, sched: Scheduler, db: Database
) -> None:
    account = alice.create_account(timezone="Europe/Berlin")
    first = alice.create_post(account.id, "first")
    second = alice.create_post(account.id, "second")
    day = day_ahead()

    # {"userId": "alice", "scheduledFor": "...Z"}: an instant; timezone defaults to the account's.
    done = sched.schedule(first.id, scheduled_for=f"{day}T10:00:00Z")
    assert done.post.state == post_pb2.POST_STATE_SCHEDULED
    assert utc(done.post.scheduled_for) == at_utc(day, 10)
    assert done.post.timezone == "Europe/Berlin"
    assert done.post.priority == post_pb2.PRIORITY_NORMAL
    assert not done.moved

    # No offset: a wall time in the request's zone; priority in any case.
    done = sched.schedule(
        second.id, scheduled_for=f"{day}T14:30", timezone="America/New_York", priority="HIGH"
    )
    wall = datetime.combine(day, datetime.min.time().replace(hour=14, minute=30), tzinfo=NY)
    assert utc(done.post.scheduled_for) == wall.astimezone(UTC)
    assert done.post.timezone == "America/New_York"
    assert done.post.priority == post_pb2.PRIORITY_HIGH

    events = db.outbox()
    assert [(kind, key) for kind, key, _ in events] == [
        ("post.scheduled", first.id),
        ("post.queue_added", first.id),
        ("post.scheduled", second.id),
        ("post.queue_added", second.id),
    ]
    payload = events[2][2]
    assert payload["postId"] == second.id and payload["userId"] == "alice"
    assert payload["accountId"] == account.id
    assert payload["scheduledFor"] == z(wall)
    assert payload["timezone"] == "America/New_York"
    assert payload["priority"] == "PRIORITY_HIGH"
    assert events[3][2]["dueAt"] == z(wall)


def test_dst_gap_is_rejected_naming_the_next_valid_time_or_shifted(
    alice: Client, sched: Scheduler, db: Database
) -> None:
    account = alice.create_account()
    post = alice.create_post(account.id)
    day = next_us_transition(3, 2)
    error = failure(
        lambda: sched.schedule(
            post.id, scheduled_for=f"{day}T02:30:00", timezone="America/New_York"
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(error)[0] == "NONEXISTENT_LOCAL_TIME"
    assert f"{day}T03:00:00-04:00" in (error.details() or "")
    assert error_info(error)["next_valid_time"] == f"{day}T03:00:00-04:00"
    assert db.outbox() == []

    done = sched.schedule(
        post.id,
        scheduled_for=f"{day}T02:30:00",
        timezone="America/New_York",
        nonexistent_time_policy=pb.NONEXISTENT_TIME_POLICY_SHIFT_FORWARD,
    )
    assert utc(done.post.scheduled_for) == at_utc(day, 7)  # 03:00 EDT


def test_dst_fold_takes_the_earlier_instant_unless_later(alice: Client, sched: Scheduler) -> None:
    account = alice.create_account()
    first, second = alice.create_post(account.id, "a"), alice.create_post(account.id, "b")
    day = next_us_transition(11, 1)
    earlier = sched.schedule(first.id, scheduled_for=f"{day}T01:30:00", timezone="America/New_York")
    assert utc(earlier.post.scheduled_for) == at_utc(day, 5, 30)  # 01:30 EDT
    later = sched.schedule(
        second.id,
        scheduled_for=f"{day}T01:30:00",
        timezone="America/New_York",
        ambiguous_time_policy=pb.AMBIGUOUS_TIME_POLICY_LATER,
    )
    assert utc(later.post.scheduled_for) == at_utc(day, 6, 30)  # 01:30 EST


@pytest.mark.parametrize(
    ("when", "reason"),
    [
        (timedelta(minutes=-5), "SCHEDULED_TIME_IN_PAST"),
        (timedelta(days=366), "SCHEDULED_TIME_TOO_FAR"),
    ],
)
def test_past_and_beyond_the_horizon_are_rejected(
    alice: Client, sched: Scheduler, db: Database, when: timedelta, reason: str
) -> None:
    post = alice.create_post(alice.create_account().id)
    error = failure(lambda: sched.schedule(post.id, scheduled_for=z(datetime.now(UTC) + when)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(error)[0] == reason
    assert db.outbox() == []
    assert db.rows("SELECT state FROM posts")[0].state == "DRAFT"


@pytest.mark.parametrize(
    ("fields", "reason", "field"),
    [
        ({"timezone": "Mars/Base"}, "UNKNOWN_TIMEZONE", "timezone"),
        ({"priority": "asap"}, "UNKNOWN_PRIORITY", "priority"),
        ({"scheduled_for": "tomorrow"}, "INVALID_SCHEDULED_TIME", "scheduled_for"),
        # Out of datetime's range once in UTC.
        ({"scheduled_for": "0001-01-01T00:00:00+01:00"}, "INVALID_SCHEDULED_TIME", "scheduled_for"),
        ({"scheduled_for": "9999-12-31T23:59:59-01:00"}, "INVALID_SCHEDULED_TIME", "scheduled_for"),
        (
            {"scheduled_for": "0001-01-01T00:30:00", "timezone": "Asia/Tokyo"},
            "INVALID_SCHEDULED_TIME",
            "scheduled_for",
        ),
    ],
)
def test_bad_input(
    alice: Client, sched: Scheduler, fields: dict[str, str], reason: str, field: str
) -> None:
    post = alice.create_post(alice.create_account().id)
    fields.setdefault("scheduled_for", f"{day_ahead()}T10:00:00Z")
    error = failure(lambda: sched.schedule(post.id, **fields))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    found_reason, violations = error_details(error)
    assert found_reason == reason and violations[0][0] == field


def test_scheduling_a_scheduled_post_reschedules_it(
    alice: Client, sched: Scheduler, db: Database
) -> None:
    post = alice.create_post(alice.create_account().id)
    day = day_ahead()
    first = sched.schedule(post.id, scheduled_for=f"{day}T10:00:00Z")
    second = sched.schedule(post.id, scheduled_for=f"{day}T11:00:00Z", priority="low")
    assert utc(second.post.scheduled_for) == at_utc(day, 11)
    assert second.post.priority == post_pb2.PRIORITY_LOW
    assert second.post.etag != first.post.etag
    scheduled = [p for kind, _, p in db.outbox() if kind == "post.scheduled"]
    assert scheduled[1]["previousScheduledFor"] == z(at_utc(day, 10))
    actions = [r.action for r in db.rows("SELECT action FROM audit_log ORDER BY id")]
    assert actions[-2:] == ["post.schedule", "post.reschedule"]


@pytest.mark.parametrize("state", ["PUBLISHING", "PUBLISHED", "CANCELLED", "DEAD_LETTERED"])
def test_refused_states(alice: Client, sched: Scheduler, db: Database, state: str) -> None:
    post = alice.create_post(alice.create_account().id)
    db.set_state(post.id, state, datetime.now(UTC) + timedelta(days=1))
    before = db.outbox()
    error = failure(lambda: sched.schedule(post.id, scheduled_for=f"{day_ahead()}T10:00:00Z"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(error)[0] == "INVALID_POST_STATE"
    assert db.outbox() == before


def test_a_failed_post_can_be_scheduled_again(
    alice: Client, sched: Scheduler, db: Database
) -> None:
    post = alice.create_post(alice.create_account().id)
    db.set_state(post.id, "FAILED")
    done = sched.schedule(post.id, scheduled_for=f"{day_ahead()}T10:00:00Z")
    assert done.post.state == post_pb2.POST_STATE_SCHEDULED


def test_cancel_twice_is_harmless_and_publishing_is_refused(
    alice: Client, sched: Scheduler, db: Database
) -> None:
    account = alice.create_account()
    post = alice.create_post(account.id)
    sched.schedule(post.id, scheduled_for=f"{day_ahead()}T10:00:00Z")
    cancelled = sched.cancel(post.id)
    assert cancelled.state == post_pb2.POST_STATE_CANCELLED
    assert [kind for kind, _, _ in db.outbox()][-1] == "post.cancelled"
    assert db.outbox()[-1][2]["scheduledFor"] == f"{day_ahead()}T10:00:00Z"
    count = len(db.outbox())
    again = sched.cancel(post.id)
    assert again == cancelled
    assert len(db.outbox()) == count

    draft = alice.create_post(account.id, "draft")
    assert failure(lambda: sched.cancel(draft.id)).code() == grpc.StatusCode.FAILED_PRECONDITION
    busy = alice.create_post(account.id, "busy")
    db.set_state(busy.id, "PUBLISHING", datetime.now(UTC))
    error = failure(lambda: sched.cancel(busy.id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(error)[0] == "INVALID_POST_STATE"
    assert len(db.outbox()) == count


def _january_posts(alice: Client, db: Database) -> tuple[str, dict[str, str]]:
    """Posts due around January 2024, set through SQL (2024 is in the past)."""
    account = alice.create_account()
    due = {
        "dec31": datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC),
        "jan01": datetime(2024, 1, 1, 0, 0, tzinfo=UTC),
        "jan15": datetime(2024, 1, 15, 12, 0, tzinfo=UTC),
        "jan15b": datetime(2024, 1, 15, 12, 0, tzinfo=UTC),
        "jan31": datetime(2024, 1, 31, 23, 59, 59, 999999, tzinfo=UTC),
        "feb01": datetime(2024, 2, 1, 0, 0, tzinfo=UTC),
    }
    ids = {}
    for name, when in due.items():
        ids[name] = alice.create_post(account.id, name).id
        db.set_state(ids[name], "SCHEDULED", when)
    return account.id, ids


def test_list_january_2024_with_limit_offset_and_total(
    alice: Client, sched: Scheduler, db: Database
) -> None:
    _, ids = _january_posts(alice, db)
    alice.create_post(alice.create_account("2").id, "a draft is not listed")
    page = sched.list(limit=20, offset=0, from_date="2024-01-01", to_date="2024-01-31")
    jan15 = sorted([ids["jan15"], ids["jan15b"]])  # equal due times: by id
    assert [p.id for p in page.posts] == [ids["jan01"], *jan15, ids["jan31"]]
    assert page.total_count == 4 and page.limit == 20 and page.offset == 0
    assert page.next_page_token == ""

    page = sched.list(limit=2, offset=1, from_date="2024-01-01", to_date="2024-01-31")
    assert [p.id for p in page.posts] == jan15
    assert page.total_count == 4 and page.next_page_token

    everything = sched.list(limit=500)
    assert everything.limit == 100 and everything.total_count == 6
    assert everything.posts[0].id == ids["dec31"] and everything.posts[-1].id == ids["feb01"]


def test_list_pages_with_tokens_bound_to_the_query(
    alice: Client, sched: Scheduler, db: Database
) -> None:
    _, ids = _january_posts(alice, db)
    seen, token = [], ""
    while True:
        page = sched.list(limit=4, page_token=token, from_date="2023-12-01")
        seen += [p.id for p in page.posts]
        assert page.total_count == 6
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == 6 and set(seen) == set(ids.values())
    first = sched.list(limit=1)
    error = failure(lambda: sched.list(limit=1, page_token=first.next_page_token, priority="high"))
    assert error_details(error)[0] == "PAGE_TOKEN_MISMATCH"
    error = failure(lambda: sched.list(offset=1, page_token=first.next_page_token))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = failure(lambda: sched.list(from_date="2024-02-01", to_date="2024-01-01"))
    assert error_details(error)[0] == "INVALID_DATE_RANGE"


def test_list_filters_by_account_state_and_priority(
    alice: Client, sched: Scheduler, db: Database
) -> None:
    account_id, ids = _january_posts(alice, db)
    other = alice.create_account("2")
    elsewhere = alice.create_post(other.id, "elsewhere", priority=post_pb2.PRIORITY_URGENT)
    db.set_state(elsewhere.id, "SCHEDULED", datetime(2024, 1, 10, tzinfo=UTC))
    db.set_state(ids["jan15"], "CANCELLED")

    assert [p.id for p in sched.list(account_id=other.id).posts] == [elsewhere.id]
    assert sched.list(account_id=account_id).total_count == 5
    cancelled = sched.list(state=post_pb2.POST_STATE_CANCELLED)
    assert [p.id for p in cancelled.posts] == [ids["jan15"]]
    assert [p.id for p in sched.list(priority="urgent").posts] == [elsewhere.id]
    assert sched.list(priority="normal").total_count == 5


def test_conflict_reject_names_the_nearest_free_times_and_move_moves(
    alice: Client, sched: Scheduler, db: Database
) -> None:
    account = alice.create_account(posting_rules=rules(min_interval_minutes=60))
    taken, wanted, moved = (alice.create_post(account.id, t) for t in ("a", "b", "c"))
    day = day_ahead()
    sched.schedule(taken.id, scheduled_for=f"{day}T12:00:00Z")
    before = db.outbox()

    error = failure(lambda: sched.schedule(wanted.id, scheduled_for=f"{day}T12:20:00Z"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(error)[0] == "SCHEDULE_CONFLICT"
    info = error_info(error)
    assert info["violated_rules"] == "MIN_INTERVAL"
    # Nearest first; each later one at least the 60-minute interval from the others.
    assert info["nearest_free_times"] == ",".join(z(at_utc(day, hour)) for hour in (13, 11, 14))
    assert db.outbox() == before
    explicit = failure(
        lambda: sched.schedule(
            wanted.id,
            scheduled_for=f"{day}T12:20:00Z",
            conflict_policy=pb.CONFLICT_POLICY_REJECT,
        )
    )
    assert error_details(explicit)[0] == "SCHEDULE_CONFLICT"

    done = sched.schedule(
        moved.id, scheduled_for=f"{day}T12:20:00Z", conflict_policy=pb.CONFLICT_POLICY_MOVE
    )
    assert done.moved and utc(done.post.scheduled_for) == at_utc(day, 13)
    assert done.move_reason.startswith(f"moved from {day} 12:20 UTC to {day} 13:00 UTC")
    assert "less than 60 minutes away" in done.move_reason


def test_duplicate_text_within_24_hours_is_refused(
    alice: Client, sched: Scheduler, db: Database
) -> None:
    account = alice.create_account()
    first = alice.create_post(account.id, "Big  news")
    second = alice.create_post(account.id, "Big news")
    day = day_ahead()
    sched.schedule(first.id, scheduled_for=f"{day}T10:00:00Z")
    count = len(db.outbox())
    error = failure(lambda: sched.schedule(second.id, scheduled_for=f"{day}T20:00:00Z"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(error)[0] == "DUPLICATE_CONTENT"
    assert error_info(error)["duplicate_post_id"] == first.id
    assert len(db.outbox()) == count
    done = sched.schedule(second.id, scheduled_for=f"{day + timedelta(days=1)}T10:00:00Z")
    assert done.post.state == post_pb2.POST_STATE_SCHEDULED


def test_no_time_takes_the_next_free_slot_and_urgent_the_earliest_minute(
    alice: Client, sched: Scheduler
) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # The daily slot half a day from now: the urgent post's earliest minute is then
    # now at any time of day (within 30 minutes of the slot it would be moved past it).
    slot = (datetime.now(berlin) + timedelta(hours=12)).replace(second=0, microsecond=0)
    account = alice.create_account(
        timezone="Europe/Berlin",
        posting_rules=rules(
            slots=[account_pb2.TimeSlot(time=slot.strftime("%H:%M"))], min_interval_minutes=30
        ),
    )
    normal, second, urgent = (alice.create_post(account.id, t) for t in ("n", "s", "u"))
    now = datetime.now(UTC)
    done = sched.schedule(normal.id)
    first_slot = utc(done.post.scheduled_for)
    local = first_slot.astimezone(berlin)
    assert (local.hour, local.minute) == (slot.hour, slot.minute)
    assert now < first_slot <= now + timedelta(days=1)
    assert done.post.timezone == "Europe/Berlin"
    following = utc(sched.schedule(second.id).post.scheduled_for)
    assert following.astimezone(berlin).hour == slot.hour
    assert following.astimezone(berlin).date() == local.date() + timedelta(days=1)

    quick = utc(sched.schedule(urgent.id, priority="urgent").post.scheduled_for)
    assert now <= quick <= datetime.now(UTC) + timedelta(minutes=1)
    assert quick.second == 0


def test_request_id_makes_scheduling_idempotent(
    alice: Client, sched: Scheduler, db: Database
) -> None:
    account = alice.create_account(posting_rules=rules(min_interval_minutes=60))
    blocker, post = alice.create_post(account.id, "a"), alice.create_post(account.id, "b")
    day = day_ahead()
    sched.schedule(blocker.id, scheduled_for=f"{day}T12:00:00Z")
    request_id = str(uuid.uuid4())
    fields = {
        "scheduled_for": f"{day}T12:30:00Z",
        "conflict_policy": pb.CONFLICT_POLICY_MOVE,
        "request_id": request_id,
    }
    first = sched.schedule(post.id, **fields)
    count = len(db.outbox())
    again = sched.schedule(post.id, **fields)
    assert again.post == first.post
    assert again.moved and utc(again.post.scheduled_for) == at_utc(day, 13)
    assert len(db.outbox()) == count
    error = failure(lambda: sched.schedule(post.id, **{**fields, "priority": "low"}))
    assert error_details(error)[0] == "REQUEST_ID_REUSED"


def test_batch_all_or_nothing_fails_whole_naming_the_index(
    alice: Client, sched: Scheduler, db: Database
) -> None:
    account = alice.create_account()
    posts = [alice.create_post(account.id, f"p{i}") for i in range(3)]
    day = day_ahead()
    requests = [
        pb.SchedulePostRequest(post_id=posts[0].id, scheduled_for=f"{day}T10:00:00Z"),
        pb.SchedulePostRequest(post_id=posts[1].id, scheduled_for="2020-01-01T10:00:00Z"),
        pb.SchedulePostRequest(post_id=posts[2].id, scheduled_for=f"{day}T11:00:00Z"),
    ]
    error = failure(lambda: sched.batch(requests, all_or_nothing=True))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    reason, violations = error_details(error)
    assert reason == "SCHEDULED_TIME_IN_PAST"
    assert violations[0][0] == "requests[1].scheduled_for"
    assert error_info(error)["index"] == "1"
    assert db.outbox() == []
    assert {r.state for r in db.rows("SELECT state FROM posts")} == {"DRAFT"}

    requests[1].scheduled_for = f"{day}T10:30:00Z"
    done = sched.batch(requests, all_or_nothing=True)
    assert [r.post_id for r in done.results] == [p.id for p in posts]
    assert all(r.response.post.state == post_pb2.POST_STATE_SCHEDULED for r in done.results)
    assert len(db.outbox()) == 6


def test_batch_refuses_a_time_outside_datetimes_range(alice: Client, sched: Scheduler) -> None:
    post = alice.create_post(alice.create_account().id)
    requests = [pb.SchedulePostRequest(post_id=post.id, scheduled_for="9999-12-31T23:59:59-01:00")]
    error = failure(lambda: sched.batch(requests, all_or_nothing=True))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    reason, violations = error_details(error)
    assert reason == "INVALID_SCHEDULED_TIME"
    assert violations[0][0] == "requests[0].scheduled_for"
    result = sched.batch(requests, all_or_nothing=False).results[0]
    assert result.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


def test_batch_all_or_nothing_sees_its_own_earlier_items(
    alice: Client, sched: Scheduler, db: Database
) -> None:
    account = alice.create_account(posting_rules=rules(min_interval_minutes=60))
    posts = [alice.create_post(account.id, f"p{i}") for i in range(2)]
    when = f"{day_ahead()}T10:00:00Z"
    requests = [pb.SchedulePostRequest(post_id=p.id, scheduled_for=when) for p in posts]
    error = failure(lambda: sched.batch(requests, all_or_nothing=True))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(error)[0] == "SCHEDULE_CONFLICT"
    assert error_info(error)["index"] == "1"
    assert db.outbox() == []


def test_batch_per_item_reports_each_result(alice: Client, sched: Scheduler, db: Database) -> None:
    account = alice.create_account()
    good, bad = alice.create_post(account.id, "good"), alice.create_post(account.id, "bad")
    db.set_state(bad.id, "PUBLISHED", datetime.now(UTC))
    requests = [
        pb.SchedulePostRequest(post_id=good.id, scheduled_for=f"{day_ahead()}T10:00:00Z"),
        pb.SchedulePostRequest(post_id=bad.id, scheduled_for=f"{day_ahead()}T11:00:00Z"),
        pb.SchedulePostRequest(post_id=str(uuid.uuid4()), scheduled_for=f"{day_ahead()}T12:00Z"),
    ]
    done = sched.batch(requests, all_or_nothing=False)
    first, second, third = done.results
    assert first.response.post.state == post_pb2.POST_STATE_SCHEDULED
    assert not first.HasField("error")
    assert second.error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert "PUBLISHED" in second.error.message and not second.HasField("response")
    assert third.error.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert [kind for kind, _, _ in db.outbox()] == ["post.scheduled", "post.queue_added"]


def test_free_slots_skip_taken_ones(alice: Client, sched: Scheduler) -> None:
    slots = [account_pb2.TimeSlot(time="09:00"), account_pb2.TimeSlot(time="15:00")]
    account = alice.create_account(posting_rules=rules(slots=slots, min_interval_minutes=60))
    post = alice.create_post(account.id)
    after = at_utc(day_ahead(), 0)
    sched.schedule(post.id, scheduled_for=z(after.replace(hour=9)))
    found = sched.free_slots(account.id, after=_stamp(after), count=3)
    assert found.timezone == "UTC"
    assert [utc(s) for s in found.slots] == [
        after.replace(hour=15),
        after.replace(hour=9) + timedelta(days=1),
        after.replace(hour=15) + timedelta(days=1),
    ]
    assert len(sched.free_slots(account.id).slots) == 5


@pytest.mark.parametrize(
    ("seconds", "reason"),
    [
        (253402300800, "INVALID_TIMESTAMP"),  # past Timestamp's 9999-12-31T23:59:59Z
        (253402300799, "AFTER_TOO_FAR"),  # valid, but slots after it would overflow
    ],
)
def test_free_slots_refuse_an_after_out_of_range(
    alice: Client, sched: Scheduler, seconds: int, reason: str
) -> None:
    from google.protobuf.timestamp_pb2 import Timestamp

    account = alice.create_account()
    error = failure(lambda: sched.free_slots(account.id, after=Timestamp(seconds=seconds)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    found_reason, violations = error_details(error)
    assert found_reason == reason and violations[0][0] == "after"


def test_posting_rules_are_validated_and_round_trip(alice: Client) -> None:
    good = rules(
        min_interval_minutes=15,
        quiet_hours=account_pb2.QuietHours(start="22:00", end="07:00"),
        slots=[account_pb2.TimeSlot(weekdays=[5, 1, 1], time="09:30")],
    )
    created = alice.create_account("5", posting_rules=good)
    assert list(created.posting_rules.slots[0].weekdays) == [1, 5]
    assert created.posting_rules.quiet_hours.start == "22:00"
    bad = rules(quiet_hours=account_pb2.QuietHours(start="25:00", end="07:00"))
    error = failure(lambda: alice.create_account("6", posting_rules=bad))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    reason, violations = error_details(error)
    assert reason == "INVALID_POSTING_RULES"
    assert violations[0][0] == "account.posting_rules.quiet_hours.start"


def test_other_users_get_permission_denied_on_every_rpc(
    alice: Client, bob: Client, db: Database
) -> None:
    account = alice.create_account()
    post = alice.create_post(account.id)
    mallory = Scheduler(bob)
    when = f"{day_ahead()}T10:00:00Z"
    missing = str(uuid.uuid4())
    calls = {
        # Acting for alice: refused before any post is read, so a made-up id
        # answers the same as a real one.
        "schedule as alice": lambda: mallory.schedule(post.id, user_id="alice"),
        "schedule unknown as alice": lambda: mallory.schedule(missing, user_id="alice"),
        # Acting for bob on alice's post.
        "schedule own id": lambda: mallory.schedule(post.id, scheduled_for=when),
        "list": lambda: mallory.list(user_id="alice"),
        "cancel as alice": lambda: mallory.cancel(post.id, user_id="alice"),
        "cancel unknown as alice": lambda: mallory.cancel(missing, user_id="alice"),
        "cancel own id": lambda: mallory.cancel(post.id),
        "batch": lambda: mallory.stub.BatchSchedulePosts(
            pb.BatchSchedulePostsRequest(
                user_id="alice",
                requests=[pb.SchedulePostRequest(post_id=post.id)],
                all_or_nothing=True,
            ),
            metadata=bob.metadata,
        ),
        "batch own id": lambda: mallory.batch(
            [pb.SchedulePostRequest(post_id=post.id, scheduled_for=when)], all_or_nothing=True
        ),
        "free slots": lambda: mallory.free_slots(account.id),
        "free slots as alice": lambda: mallory.free_slots(account.id, user_id="alice"),
        "free slots own id": lambda: mallory.free_slots(account.id, user_id="bob"),
    }
    for name, call in calls.items():
        assert failure(call).code() == grpc.StatusCode.PERMISSION_DENIED, name
    per_item = mallory.batch(
        [pb.SchedulePostRequest(post_id=post.id, scheduled_for=when)], all_or_nothing=False
    )
    assert per_item.results[0].error.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
    assert db.outbox() == []
    assert db.rows("SELECT state FROM posts")[0].state == "DRAFT"


def _stamp(value: datetime) -> object:
    from google.protobuf.timestamp_pb2 import Timestamp

    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp
