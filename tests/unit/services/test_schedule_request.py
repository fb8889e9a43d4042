"""SchedulePost as a typed command: the digest of a replayed request id is unchanged."""

from __future__ import annotations

import uuid

from post_management.domain.conflicts import ConflictPolicy
from post_management.domain.post import Priority
from post_management.domain.requested_time import parse_requested_time
from post_management.domain.slots import SlotPolicy
from post_management.domain.timezones import (
    AmbiguousTimePolicy,
    NonexistentTimePolicy,
    load_zone,
)
from post_management.services.scheduling.support import ScheduleRequest, request_digest
from post_management.services.shared import idempotency

POST = uuid.UUID("6f1c1d8e-53a4-4c55-9a55-3f3b0b0f6b11")


def _as_stored_before(**raw: object) -> str:
    """The digest as it was computed from the request's strings, before they were read
    at the edge: stored request ids keep these."""
    fields: dict[str, object] = {
        "post_id": POST,
        "user_id": "alice",
        "scheduled_for": "",
        "timezone": "",
        "priority": "",
        "conflict_policy": ConflictPolicy.REJECT,
        "nonexistent": NonexistentTimePolicy.REJECT,
        "ambiguous": AmbiguousTimePolicy.EARLIER,
        "request_id": "r-1",
        **raw,
    }
    return idempotency.request_hash(fields)


def test_a_bare_request_digests_as_before() -> None:
    assert request_digest(ScheduleRequest(POST, "alice", request_id="r-1")) == _as_stored_before()


def test_a_full_request_digests_as_its_strings_did() -> None:
    command = ScheduleRequest(
        POST,
        "alice",
        scheduled_for=parse_requested_time("2031-03-09T09:30:00"),
        timezone=load_zone("Europe/Berlin"),
        priority=Priority.HIGH,
        conflict_policy=ConflictPolicy.MOVE,
        request_id="r-1",
        slot_policy=SlotPolicy.NEXT,
    )
    assert request_digest(command) == _as_stored_before(
        scheduled_for="2031-03-09T09:30:00",
        timezone="Europe/Berlin",
        priority="high",
        conflict_policy=ConflictPolicy.MOVE,
    )


def test_the_best_slot_policy_is_part_of_the_digest() -> None:
    best = ScheduleRequest(POST, "alice", request_id="r-1", slot_policy=SlotPolicy.BEST)
    assert request_digest(best) == _as_stored_before(slot_policy=SlotPolicy.BEST)
    assert request_digest(best) != _as_stored_before()


def test_another_time_is_another_request() -> None:
    one = ScheduleRequest(POST, "alice", parse_requested_time("2031-03-09T09:30:00Z"))
    other = ScheduleRequest(POST, "alice", parse_requested_time("2031-03-09T09:31:00Z"))
    assert request_digest(one) != request_digest(other)
