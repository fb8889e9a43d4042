"""Wall time <-> instant in every IANA zone: an existing wall time maps back to its
instant. The gaps and folds of every offset change 2020-2035 are checked in
tests/exhaustive/test_timezone_transitions.py (scanning every zone takes seconds)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from post_management.domain.timezones import (
    AmbiguousTimePolicy,
    NonexistentTimePolicy,
    WallTimeKind,
    classify,
    to_instant,
)
from tests.support.transitions import ALL_ZONES, SCAN_END, SCAN_START

PROPERTY = settings(max_examples=300, deadline=None)

instants = st.integers(int(SCAN_START.timestamp()), int(SCAN_END.timestamp()) - 1).map(
    lambda seconds: datetime.fromtimestamp(seconds, UTC)
)


@PROPERTY
@given(name=st.sampled_from(ALL_ZONES), instant=instants)
def test_an_existing_wall_time_maps_back_to_its_instant(name: str, instant: datetime) -> None:
    zone = ZoneInfo(name)
    local = instant.astimezone(zone)
    wall = local.replace(tzinfo=None, fold=0)
    policy = AmbiguousTimePolicy.LATER if local.fold else AmbiguousTimePolicy.EARLIER

    resolved = to_instant(wall, zone, NonexistentTimePolicy.REJECT, policy)

    assert resolved == instant
    assert resolved.astimezone(zone).replace(tzinfo=None, fold=0) == wall  # no shift
    assert classify(wall, zone) is not WallTimeKind.GAP
