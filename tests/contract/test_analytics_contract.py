"""The analytics repositories on the unit of work (`uow.analytics`, `uow.insights`):
the same answers from memory and PostgreSQL, with the same order, windows and limits.
What the synchronous ones write (the collectors') is read back as the request path
reads it, through the asynchronous unit of work."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from post_management.domain.account import AccountState
from post_management.domain.analytics import Counts, Snapshot
from post_management.domain.growth import FollowerSnapshot
from post_management.domain.media import Media, MediaKind
from post_management.domain.post import Post, PostState
from post_management.domain.trends import Point
from post_management.ports.analytics import SOURCE_POLL, SOURCE_WEBHOOK, TrendAlert
from post_management.ports.async_unit_of_work import AsyncUnitOfWork
from tests.contract.builders import a_post, an_account, published, snap, store
from tests.contract.conftest import World, read


def stored_published_post(world: World) -> tuple[datetime, Post]:
    """Now, and a post of a new account published five hours before, both stored."""
    now = world.time.now()
    account = an_account(now)
    post = published(account, now - timedelta(hours=5))
    store(world.uow, account, post)
    return now, post


def by_id(*posts: Post) -> list[Post]:
    return sorted(posts, key=lambda post: post.id)


def test_snapshots_read_back_in_collection_order_with_withheld_counts_unknown(
    world: World,
) -> None:
    now, post = stored_published_post(world)
    early, later = now - timedelta(hours=4), now - timedelta(hours=3)
    full = Snapshot(later, Counts(100, 5, 1, 1, 0, 2, 7, 3, 40))
    # X withheld the private counts: they read as 0 and as not known; video views stay.
    withheld = Snapshot(early, Counts(50, 2, 0, 0, 0, 0, 9, 9, 12), private_known=False)
    tied = snap(later, impressions=120)
    assert read(world, lambda w: w.analytics.latest(post.id)) is None
    assert read(world, lambda w: w.analytics.series(post.id)) == []
    with world.uow() as uow:
        uow.analytics.add_snapshot(post.id, full, SOURCE_POLL)
        uow.analytics.add_snapshot(post.id, withheld, SOURCE_POLL)
        uow.analytics.add_snapshot(post.id, tied, SOURCE_WEBHOOK)
        uow.commit()
    read_back = Snapshot(early, Counts(50, 2, 0, 0, 0, 0, 0, 0, 12), private_known=False)
    # Oldest first; equal instants in the order written, the later one the latest.
    assert read(world, lambda w: w.analytics.series(post.id)) == [read_back, full, tied]
    assert read(world, lambda w: w.analytics.latest(post.id)) == tied


def test_a_rolled_back_snapshot_is_not_kept_and_a_deleted_post_takes_its_rows(
    world: World,
) -> None:
    now, post = stored_published_post(world)
    with world.uow() as uow:
        uow.analytics.add_snapshot(post.id, snap(now), SOURCE_POLL)
        uow.analytics.mark_deleted(post.id, now)
        uow.rollback()
    assert read(world, lambda w: w.analytics.series(post.id)) == []
    assert not read(world, lambda w: w.analytics.deleted_on_x(post.id))
    with world.uow() as uow:
        uow.analytics.add_snapshot(post.id, snap(now), SOURCE_POLL)
        uow.analytics.mark_deleted(post.id, now)
        uow.commit()
    assert read(world, lambda w: w.analytics.deleted_on_x(post.id))
    with world.uow() as uow:
        assert uow.posts.delete(post.id, post.version)
        uow.commit()
    assert read(world, lambda w: w.analytics.series(post.id)) == []
    assert not read(world, lambda w: w.analytics.deleted_on_x(post.id))


def test_refreshes_fall_due_most_overdue_first_until_x_deleted_the_post(world: World) -> None:
    now = world.time.now()
    account = an_account(now)
    bare = an_account(now, credentials=None)
    oldest = published(account, now - timedelta(hours=9))
    with_keys = published(account, now - timedelta(hours=6))
    keyless = published(bare, now - timedelta(hours=6))
    a, b = by_id(with_keys, keyless)
    future = published(account, now - timedelta(hours=1))
    deleted = published(account, now - timedelta(hours=8))
    unsent = published(account, now - timedelta(hours=7), x_post_id="", segment_x_post_ids=[])
    failed = a_post(account, now, state=PostState.FAILED, published_at=now - timedelta(hours=9))
    store(world.uow, account, bare, oldest, a, b, future, deleted, unsent, failed)
    with world.uow() as uow:
        uow.analytics.mark_collected(
            future.id, now - timedelta(minutes=50), now + timedelta(hours=1)
        )
        uow.analytics.mark_collected(oldest.id, now - timedelta(hours=8), now - timedelta(hours=2))
        uow.analytics.mark_deleted(deleted.id, now - timedelta(hours=3))
        uow.commit()
    assert not read(world, lambda w: w.analytics.deleted_on_x(oldest.id))
    assert read(world, lambda w: w.analytics.deleted_on_x(deleted.id))
    with world.uow() as uow:
        due = uow.analytics.due_for_refresh(now, 10)
        assert uow.analytics.due_for_refresh(now, 2) == due[:2]
        # Collected again: it falls due at its next instant.
        uow.analytics.mark_collected(a.id, now, now + timedelta(minutes=5))
        later = uow.analytics.due_for_refresh(now + timedelta(minutes=5), 10)
    # Never measured: due since publishing, ties by post id; then the rescheduled one.
    assert [item.post_id for item in due] == [a.id, b.id, oldest.id]
    first = due[0]
    assert (first.account_id, first.user_id, first.x_post_id) == (
        a.account_id,
        "alice",
        a.x_post_id,
    )
    assert first.published_at == a.published_at
    # The account's credentials, None when it has none.
    found = {item.post_id: item.credentials for item in due}
    assert found[oldest.id] == found[with_keys.id] == account.credentials
    assert found[keyless.id] is None
    assert [item.post_id for item in later] == [b.id, oldest.id, a.id]


def test_an_accounts_published_posts_carry_their_latest_snapshot(world: World) -> None:
    now = world.time.now()
    account, other = an_account(now), an_account(now)
    old = published(account, now - timedelta(days=10))
    first, second = by_id(
        published(account, now - timedelta(days=2)), published(account, now - timedelta(days=2))
    )
    newest = published(account, now - timedelta(hours=1))
    scheduled = a_post(account, now, due_in=timedelta(hours=1))
    elsewhere = published(other, now - timedelta(hours=1))
    store(world.uow, account, other, old, first, second, newest, scheduled, elsewhere)
    with world.uow() as uow:
        uow.analytics.add_snapshot(second.id, snap(now - timedelta(days=1)), SOURCE_POLL)
        uow.analytics.add_snapshot(second.id, snap(now, impressions=300), SOURCE_POLL)
        uow.commit()
    every = read(world, lambda w: w.analytics.account_posts(account.id, None))
    recent = read(world, lambda w: w.analytics.account_posts(account.id, first.published_at))
    assert [p.post_id for p in every] == [old.id, first.id, second.id, newest.id]
    assert [p.post_id for p in recent] == [first.id, second.id, newest.id]
    measured = recent[1]
    assert measured.latest == snap(now, impressions=300)
    assert (measured.account_id, measured.state) == (account.id, PostState.PUBLISHED)
    assert (measured.published_at, measured.due_at) == (second.published_at, second.scheduled_for)
    assert recent[0].latest is None


def test_a_users_posts_are_windowed_by_their_reference_time(world: World) -> None:
    now = world.time.now()
    account = an_account(now)
    stranger = an_account(now, user_id="bob")
    start, end = now - timedelta(days=7), now
    # coalesce(published_at, due_at, created_at): each in turn decides.
    sent = published(account, now - timedelta(days=3))
    due = a_post(account, now - timedelta(days=30), due_in=timedelta(days=25))
    draft = a_post(account, now - timedelta(days=1), due_in=None, state=PostState.DRAFT)
    before = published(account, start - timedelta(seconds=1))
    at_end = a_post(account, now - timedelta(days=30), due_in=timedelta(days=30))
    at_start = published(account, start)
    bobs = published(stranger, now - timedelta(days=2))
    store(world.uow, account, stranger, sent, due, draft, before, at_end, at_start, bobs)
    found = read(world, lambda w: w.analytics.user_posts("alice", start, end))
    assert [p.post_id for p in found] == [at_start.id, due.id, sent.id, draft.id]
    assert found[1].state is PostState.SCHEDULED and found[1].published_at is None


def test_the_days_first_follower_count_is_kept(world: World) -> None:
    now = world.time.now()
    account = an_account(now)
    store(world.uow, account)
    day = now.date()
    first = FollowerSnapshot(day, now - timedelta(minutes=10), 100, 10, 50, 2)
    again = FollowerSnapshot(day, now - timedelta(minutes=5), 101, 10, 50, 2)
    yesterday = FollowerSnapshot(day - timedelta(days=1), now - timedelta(days=1), 90)
    with world.uow() as uow:
        assert uow.insights.add_follower_snapshot(account.id, first)
        assert not uow.insights.add_follower_snapshot(account.id, again)
        assert uow.insights.add_follower_snapshot(account.id, yesterday)
        uow.commit()
    with world.uow() as uow:
        assert uow.insights.follower_snapshots(account.id, now - timedelta(days=2), now) == [
            yesterday,
            first,
        ]
        # [start, end)
        assert uow.insights.follower_snapshots(account.id, first.collected_at, now) == [first]
        assert uow.insights.follower_snapshots(
            account.id, yesterday.collected_at, first.collected_at
        ) == [yesterday]
        assert uow.insights.follower_snapshots(uuid.uuid4(), now - timedelta(days=2), now) == []


def test_growth_falls_due_for_running_accounts_with_credentials_not_read_today(
    world: World,
) -> None:
    now = world.time.now()
    day_start = now - timedelta(hours=1)
    due = [an_account(now, user_id=f"u{n}") for n in range(3)]
    read_today = an_account(now)
    paused = an_account(now, state=AccountState.PAUSED)
    bare = an_account(now, credentials=None)
    store(world.uow, *due, read_today, paused, bare)
    with world.uow() as uow:
        yesterday = FollowerSnapshot(date(2020, 1, 1), day_start - timedelta(seconds=1), 5)
        uow.insights.add_follower_snapshot(due[0].id, yesterday)
        today = FollowerSnapshot(now.date(), day_start, 5)
        uow.insights.add_follower_snapshot(read_today.id, today)
        uow.commit()
    with world.uow() as uow:
        found = uow.insights.growth_due(day_start, 10)
        assert uow.insights.growth_due(day_start, 2) == found[:2]
    expected = sorted(due, key=lambda account: account.id)
    assert [(g.account_id, g.user_id, g.credentials) for g in found] == [
        (a.id, a.user_id, a.credentials) for a in expected
    ]


def test_engagement_history_is_the_newest_measured_posts_oldest_first(world: World) -> None:
    now = world.time.now()
    account = an_account(now, timezone="Europe/Paris")
    other = an_account(now, timezone="America/New_York")
    video = Media(uuid.uuid4(), "alice", "video/mp4", MediaKind.VIDEO, 10, now)
    with world.uow() as uow:
        uow.media.add(video, b"0123456789")
        uow.commit()
    cutoff = now - timedelta(days=1)
    oldest = published(account, now - timedelta(days=5), text="oldest")
    with_video = published(account, now - timedelta(days=4), attachment_ids=[video.id])
    legacy = published(account, now - timedelta(days=3), media_ids=["12345"])
    unseen = published(account, now - timedelta(days=2))  # no impressions yet
    unmeasured = published(account, now - timedelta(days=2))
    too_young = published(account, now - timedelta(hours=2))
    others = published(other, now - timedelta(days=6))
    store(
        world.uow, account, other, oldest, with_video, legacy, unseen, unmeasured, too_young, others
    )
    with world.uow() as uow:
        for post, impressions in (
            (oldest, 100),
            (with_video, 200),
            (legacy, 400),
            (too_young, 50),
            (others, 10),
        ):
            uow.analytics.add_snapshot(post.id, snap(now, impressions, likes=10), SOURCE_POLL)
        uow.analytics.add_snapshot(unseen.id, snap(now, 0, likes=0), SOURCE_POLL)
        uow.commit()
    mine = read(world, lambda w: w.insights.engagement_history(account.id, cutoff, 10))
    newest_two = read(world, lambda w: w.insights.engagement_history(account.id, cutoff, 2))
    every = read(world, lambda w: w.insights.engagement_history(None, cutoff, 10))
    assert [p.draft.at for p in mine] == [
        oldest.published_at,
        with_video.published_at,
        legacy.published_at,
    ]
    assert [p.draft.media for p in mine] == [None, MediaKind.VIDEO, MediaKind.IMAGE]
    assert mine[0].draft.text == "oldest"
    assert [(p.account_id, p.timezone) for p in mine] == [(str(account.id), "Europe/Paris")] * 3
    assert [(p.impressions, p.engagement_rate) for p in mine] == [
        (100, 0.1),
        (200, 0.05),
        (400, 0.025),
    ]
    assert newest_two == mine[1:]
    assert [p.draft.at for p in every] == [others.published_at, *[p.draft.at for p in mine]]
    assert every[0].timezone == "America/New_York"


def test_young_posts_are_published_recently_and_measured_since(world: World) -> None:
    now = world.time.now()
    account = an_account(now)
    a, b = by_id(
        published(account, now - timedelta(hours=3)), published(account, now - timedelta(hours=3))
    )
    newest = published(account, now - timedelta(hours=1))
    stale = published(account, now - timedelta(hours=2))  # measured before the cutoff
    old = published(account, now - timedelta(days=3))
    store(world.uow, account, a, b, newest, stale, old)
    with world.uow() as uow:
        for post in (a, b, newest, old):
            uow.analytics.add_snapshot(post.id, snap(now - timedelta(minutes=1)), SOURCE_POLL)
        uow.analytics.add_snapshot(stale.id, snap(now - timedelta(minutes=20)), SOURCE_POLL)
        uow.commit()
    with world.uow() as uow:
        young = uow.insights.young_posts(now - timedelta(days=1), now - timedelta(minutes=10), 10)
        first_two = uow.insights.young_posts(
            now - timedelta(days=1), now - timedelta(minutes=10), 2
        )
    assert [(p.post_id, p.account_id, p.user_id) for p in young] == [
        (a.id, account.id, "alice"),
        (b.id, account.id, "alice"),
        (newest.id, account.id, "alice"),
    ]
    assert young[2].published_at == newest.published_at
    assert first_two == young[:2]


def test_early_points_are_the_newest_posts_engagements_over_their_first_hours(
    world: World,
) -> None:
    now = world.time.now()
    account, other = an_account(now), an_account(now)
    oldest = published(account, now - timedelta(hours=30))
    middle = published(account, now - timedelta(hours=20))
    newest = published(account, now - timedelta(hours=10))
    before = published(account, now - timedelta(days=5))
    elsewhere = published(other, now - timedelta(hours=10))
    store(world.uow, account, other, oldest, middle, newest, before, elsewhere)
    window = timedelta(hours=2)
    with world.uow() as uow:
        for post in (oldest, middle, newest, before, elsewhere):
            assert post.published_at is not None
            at = post.published_at
            uow.analytics.add_snapshot(
                post.id, snap(at + timedelta(hours=1), likes=3, reposts=1), SOURCE_POLL
            )
            # Withheld private counts add nothing; a snapshot past the window is left out.
            withheld = Snapshot(at + window, Counts(200, 6, 1, user_profile_clicks=50), False)
            uow.analytics.add_snapshot(post.id, withheld, SOURCE_POLL)
            uow.analytics.add_snapshot(
                post.id, snap(at + timedelta(hours=3), likes=99), SOURCE_POLL
            )
        uow.commit()
    with world.uow() as uow:
        found = uow.insights.early_points(account.id, now - timedelta(days=2), window, 10)
        newest_two = uow.insights.early_points(account.id, now - timedelta(days=2), window, 2)
        assert uow.insights.early_points(account.id, now, window, 10) == {}
    assert sorted(found) == sorted([oldest.id, middle.id, newest.id])
    assert list(found) == sorted(found)  # by post id
    points = [Point(timedelta(hours=1), 4), Point(window, 7)]
    for post in (oldest, middle, newest):
        assert (found[post.id].published_at, found[post.id].points) == (post.published_at, points)
    assert sorted(newest_two) == sorted([middle.id, newest.id])


def test_a_trend_alert_is_stored_once_and_found_for_the_posts_it_covers(world: World) -> None:
    now = world.time.now()
    account, other = an_account(now), an_account(now)
    covered = published(account, now - timedelta(hours=5))
    outside = published(account, now - timedelta(days=3))
    draft = a_post(account, now, due_in=None, state=PostState.DRAFT)
    store(world.uow, account, other, covered, outside, draft)

    def alert(key: str, detected_at: datetime, **fields: object) -> TrendAlert:
        values: dict[str, object] = {
            "dedup_key": key,
            "account_id": account.id,
            "post_id": covered.id,
            "kind": "VELOCITY_SPIKE",
            "metric": "engagements",
            "observed": 12.5,
            "expected": 3.25,
            "score": 4.0,
            "summary": "faster than usual",
            "detected_at": detected_at,
            "age": timedelta(minutes=90),
        } | fields
        return TrendAlert(**values)  # type: ignore[arg-type]

    own_late = alert("spike-2", now - timedelta(hours=1))
    own_early = alert("spike-1", now - timedelta(hours=2))
    drop = alert(
        "drop-1",
        now - timedelta(hours=3),
        post_id=None,
        kind="FOLLOWER_DROP",
        metric="followers",
        age=None,
        window_start=now - timedelta(hours=6),
    )
    others_drop = alert(
        "drop-2",
        now - timedelta(hours=3),
        account_id=other.id,
        post_id=None,
        window_start=now - timedelta(days=1),
        age=None,
    )
    with world.uow() as uow:
        for stored in (own_late, own_early, drop, others_drop):
            assert uow.insights.add_trend_alert(stored)
        assert not uow.insights.add_trend_alert(alert("spike-1", now, summary="again"))
        uow.commit()

    async def alerts(work: AsyncUnitOfWork) -> list[list[TrendAlert]]:
        of_post = work.insights.trend_alerts_for_post
        return [
            await of_post(covered.id, account.id, covered.published_at),
            await of_post(outside.id, account.id, outside.published_at),
            await of_post(draft.id, account.id, None),
            # The window is [window_start, detected_at).
            await of_post(draft.id, account.id, drop.detected_at),
            await of_post(draft.id, account.id, drop.window_start),
        ]

    mine, outside_alerts, unpublished, at_detection, at_start = read(world, alerts)
    assert mine == [drop, own_early, own_late]
    assert outside_alerts == [] and unpublished == [] and at_detection == []
    assert at_start == [drop]
