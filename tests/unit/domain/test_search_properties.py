"""The jumping search finds exactly what a minute-by-minute scan finds."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from post_management.domain.conflicts import nearest_free_times
from post_management.domain.posting_calendar import PostingCalendar
from post_management.domain.posting_rules import PostingRules, QuietHours

# DST changes in 2026 (UTC instants): both directions, a half-hour change
# (Lord Howe) and a change at local midnight (Santiago); UTC as a control.
CHANGES = [
    ("Europe/Berlin", datetime(2026, 3, 29, 1, tzinfo=UTC)),
    ("Europe/Berlin", datetime(2026, 10, 25, 1, tzinfo=UTC)),
    ("America/New_York", datetime(2026, 3, 8, 7, tzinfo=UTC)),
    ("America/New_York", datetime(2026, 11, 1, 6, tzinfo=UTC)),
    ("Australia/Lord_Howe", datetime(2026, 4, 4, 15, tzinfo=UTC)),
    ("America/Santiago", datetime(2026, 4, 5, 3, tzinfo=UTC)),
    ("UTC", datetime(2026, 3, 29, 1, tzinfo=UTC)),
]
STEP = timedelta(minutes=5)
WINDOW = timedelta(hours=30)


@st.composite
def quiet_hours(draw: st.DrawFn) -> QuietHours | None:
    if not draw(st.booleans()):
        return None
    start, end = draw(st.integers(0, 95)), draw(st.integers(0, 95))
    if start == end:
        return None
    return QuietHours(time(start // 4, start % 4 * 15), time(end // 4, end % 4 * 15))


rules_strategy = st.builds(
    PostingRules,
    min_interval_minutes=st.sampled_from([0, 10, 45, 90]),
    max_posts_per_hour=st.integers(0, 2),
    max_posts_per_day=st.integers(0, 4),
    quiet_hours=quiet_hours(),
)


def brute_force(
    calendar: PostingCalendar, candidate: datetime, now: datetime, n: int, spacing: timedelta
) -> list[datetime]:
    low, high = max(now, candidate - WINDOW), candidate + WINDOW
    grid = [low + i * STEP for i in range(int((high - low) / STEP) + 1)]
    ordered = sorted(grid, key=lambda t: (abs(t - candidate), t < candidate))
    chosen: list[datetime] = []
    for t in ordered:
        # is_free answers as violations() does (tests/unit/domain/test_conflicts.py).
        free = len(chosen) < n and calendar.is_free(t)
        if free and all(abs(t - c) >= spacing for c in chosen):
            chosen.append(t)
    return chosen


@settings(max_examples=300, deadline=None)
@given(
    rules=rules_strategy,
    change=st.sampled_from(CHANGES),
    offsets=st.lists(st.integers(-36 * 12, 36 * 12), max_size=12),
    candidate_offset=st.integers(-12 * 12, 12 * 12),
    now_back=st.integers(0, 24 * 12),
)
def test_nearest_free_times_match_a_brute_force_scan(
    rules: PostingRules,
    change: tuple[str, datetime],
    offsets: list[int],
    candidate_offset: int,
    now_back: int,
) -> None:
    zone_name, base = change
    zone = ZoneInfo(zone_name)
    others = [base + k * STEP + timedelta(minutes=2) for k in offsets]  # off the grid
    candidate = base + candidate_offset * STEP
    now = candidate - now_back * STEP
    spacing = max(timedelta(minutes=15), timedelta(minutes=rules.min_interval_minutes))

    found = nearest_free_times(candidate, rules, zone, others, now, n=3, step=STEP, window=WINDOW)

    expected = brute_force(PostingCalendar(rules, zone, others), candidate, now, 3, spacing)
    assert found == expected
