"""Deterministic engagement growth for emulated posts.

Every post saturates towards a reach R seeded by its id:

    impressions(t) = floor(R * (1 - exp(-t / tau)))        t = age in seconds

with R in [200, 10000) and tau in [1800, 7200) s. Every other count is a
fixed per-mille share of impressions (also seeded by the id), so all counts
grow monotonically with age and two reads at the same clock agree.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Counts:
    impressions: int
    likes: int
    retweets: int
    replies: int
    quotes: int
    bookmarks: int
    url_link_clicks: int
    user_profile_clicks: int

    @property
    def engagements(self) -> int:
        return (
            self.likes
            + self.retweets
            + self.replies
            + self.quotes
            + self.bookmarks
            + self.url_link_clicks
            + self.user_profile_clicks
        )


def _seed(post_id: str) -> int:
    return int.from_bytes(hashlib.sha256(post_id.encode()).digest()[:8], "big")


def counts_at(post_id: str, age_seconds: float) -> Counts:
    seed = _seed(post_id)
    reach = 200 + seed % 9800
    tau = 1800 + (seed >> 16) % 5400
    impressions = math.floor(reach * (1 - math.exp(-max(age_seconds, 0.0) / tau)))

    def share(shift: int, low: int, span: int) -> int:
        per_mille = low + (seed >> shift) % span
        return impressions * per_mille // 1000

    return Counts(
        impressions=impressions,
        likes=share(24, 10, 40),
        retweets=share(30, 2, 8),
        replies=share(34, 1, 5),
        quotes=share(38, 0, 3),
        bookmarks=share(42, 1, 6),
        url_link_clicks=share(46, 0, 20),
        user_profile_clicks=share(52, 1, 10),
    )


@dataclass(frozen=True)
class UserCounts:
    followers: int
    following: int
    listed: int


def user_counts_at(user_id: str, age_seconds: float) -> UserCounts:
    """A user's audience: a base seeded by the id, plus 1 to 20 followers per hour of
    emulator time since the user was first seen; lists follow the followers."""
    seed = _seed(f"user:{user_id}")
    per_hour = 1 + seed % 20
    followers = 50 + (seed >> 8) % 5000 + math.floor(per_hour * max(age_seconds, 0.0) / 3600)
    return UserCounts(
        followers=followers,
        following=10 + (seed >> 24) % 990,
        listed=followers // 200,
    )
