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

from post_management.domain import timezones as tz
from post_management.domain.errors import InvalidArgument
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
    assert tz.classify(wall, zone) is tz.WallTimeKind.GAP

    with pytest.raises(InvalidArgument) as caught:
        tz.to_instant(wall, zone)

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

    resolved = tz.to_instant(wall, zone, tz.NonexistentTimePolicy.SHIFT_FORWARD)

    assert resolved == transition.at
    # The first valid wall time: where the gap's wall-clock range ends.
    expected_wall = transition.wall_start + transition.width
    assert resolved.astimezone(zone).replace(tzinfo=None) == expected_wall


@PROPERTY
@given(case=fold_times)
def test_a_fold_time_follows_the_ambiguity_policy(case: tuple[Transition, datetime]) -> None:
    transition, wall = case
    zone = ZoneInfo(transition.zone)
    assert tz.classify(wall, zone) is tz.WallTimeKind.FOLD

    earlier = tz.to_instant(wall, zone)  # EARLIER is the default
    later = tz.to_instant(wall, zone, ambiguous=tz.AmbiguousTimePolicy.LATER)

    assert earlier == (wall - transition.before).replace(tzinfo=UTC)
    assert later == (wall - transition.after).replace(tzinfo=UTC)
    assert later - earlier == transition.width


def test_every_transition_of_every_zone_is_classified() -> None:
    # Exhaustive, not sampled: the middle and both edges of every gap and fold.
    tick = timedelta(microseconds=1)
    assert len(all_transitions()) > 1000  # the scan found the DST zones
    for transition in all_transitions():
        zone = ZoneInfo(transition.zone)
        inside = tz.WallTimeKind.GAP if transition.is_gap else tz.WallTimeKind.FOLD
        first, last = transition.wall_start, transition.wall_start + transition.width
        assert tz.classify(first, zone) is inside, transition
        assert tz.classify(first + transition.width / 2, zone) is inside, transition
        assert tz.classify(last - tick, zone) is inside, transition
        assert tz.classify(first - tick, zone) is tz.WallTimeKind.EXISTS, transition
        assert tz.classify(last, zone) is tz.WallTimeKind.EXISTS, transition
        if transition.is_gap:
            shifted = tz.to_instant(first, zone, tz.NonexistentTimePolicy.SHIFT_FORWARD)
            assert shifted == transition.at, transition
