"""Gaps and folds of every IANA zone's offset changes 2020-2035: sampled gap and fold
wall times follow their policies, and every change is classified at its edges.

The oracle scans every zone day by day (tests/support/transitions.py), which takes
seconds: that is why these live here and not in the unit tier, which keeps the
property over existing wall times (tests/unit/domain/test_timezones_properties.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from post_management.domain.errors import InvalidArgument
from post_management.domain.timezones import (
    AmbiguousTimePolicy,
    NonexistentTimePolicy,
    WallTimeKind,
    classify,
    to_instant,
)
from tests.support.transitions import Transition, all_transitions, folds, gaps

PROPERTY = settings(max_examples=300, deadline=None)


@st.composite
def wall_time_in(
    draw: st.DrawFn, pool: st.SearchStrategy[Transition]
) -> tuple[Transition, datetime]:
    """A transition and a naive wall time inside its gap or fold."""
    transition = draw(pool)
    inside = draw(st.integers(0, int(transition.width.total_seconds()) * 1_000_000 - 1))
    return transition, transition.wall_start + timedelta(microseconds=inside)


gap_times = wall_time_in(st.deferred(lambda: st.sampled_from(gaps())))
fold_times = wall_time_in(st.deferred(lambda: st.sampled_from(folds())))


@PROPERTY
@given(case=gap_times)
def test_a_gap_time_is_rejected_naming_the_next_valid_time(
    case: tuple[Transition, datetime],
) -> None:
    transition, wall = case
    zone = ZoneInfo(transition.zone)
    assert classify(wall, zone) is WallTimeKind.GAP

    with pytest.raises(InvalidArgument) as caught:
        to_instant(wall, zone)

    error = caught.value
    next_local = transition.at.astimezone(zone).isoformat()
    assert error.reason == "NONEXISTENT_LOCAL_TIME"
    assert error.violations[0].field == "scheduled_for"
    assert error.metadata["next_valid_time"] == next_local
    assert error.metadata["next_valid_time_utc"] == transition.at.isoformat().replace("+00:00", "Z")
    assert next_local in error.message


@PROPERTY
@given(case=gap_times)
def test_a_gap_time_shifts_to_the_end_of_the_gap(case: tuple[Transition, datetime]) -> None:
    transition, wall = case
    zone = ZoneInfo(transition.zone)

    resolved = to_instant(wall, zone, NonexistentTimePolicy.SHIFT_FORWARD)

    assert resolved == transition.at
    # The first valid wall time: where the gap's wall-clock range ends.
    expected_wall = transition.wall_start + transition.width
    assert resolved.astimezone(zone).replace(tzinfo=None) == expected_wall


@PROPERTY
@given(case=fold_times)
def test_a_fold_time_follows_the_ambiguity_policy(case: tuple[Transition, datetime]) -> None:
    transition, wall = case
    zone = ZoneInfo(transition.zone)
    assert classify(wall, zone) is WallTimeKind.FOLD

    earlier = to_instant(wall, zone)  # EARLIER is the default
    later = to_instant(wall, zone, ambiguous=AmbiguousTimePolicy.LATER)

    assert earlier == (wall - transition.before).replace(tzinfo=UTC)
    assert later == (wall - transition.after).replace(tzinfo=UTC)
    assert later - earlier == transition.width


def test_every_transition_of_every_zone_is_classified() -> None:
    # Exhaustive, not sampled: the middle and both edges of every gap and fold.
    tick = timedelta(microseconds=1)
    assert len(all_transitions()) > 1000  # the scan found the DST zones
    for transition in all_transitions():
        zone = ZoneInfo(transition.zone)
        inside = WallTimeKind.GAP if transition.is_gap else WallTimeKind.FOLD
        first, last = transition.wall_start, transition.wall_start + transition.width
        assert classify(first, zone) is inside, transition
        assert classify(first + transition.width / 2, zone) is inside, transition
        assert classify(last - tick, zone) is inside, transition
        assert classify(first - tick, zone) is WallTimeKind.EXISTS, transition
        assert classify(last, zone) is WallTimeKind.EXISTS, transition
        if transition.is_gap:
            shifted = to_instant(first, zone, NonexistentTimePolicy.SHIFT_FORWARD)
            assert shifted == transition.at, transition
