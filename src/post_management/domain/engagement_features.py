"""What the engagement model sees of a post: numbers from its text, media and time.

Pure functions; the model itself (scikit-learn) lives behind ports/engagement_model.py.
docs/analytics.md lists the features with their definitions.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from post_management.domain.media import MediaKind

FEATURE_NAMES: tuple[str, ...] = (
    "text_length",
    "links",
    "hashtags",
    "mentions",
    "media",
    "question",
    "hour_of_week",
    "local_hour",
    "weekend",
    "hours_since_previous",
)
# Media as one ordinal number: none, image, GIF, video.
MEDIA_CODES: dict[MediaKind | None, float] = {
    None: 0.0,
    MediaKind.IMAGE: 1.0,
    MediaKind.GIF: 2.0,
    MediaKind.VIDEO: 3.0,
}
# Recency is capped: a week without posting is as good as forever for the model.
MAX_GAP_HOURS = 168.0

_LINK = re.compile(r"https?://\S+", re.IGNORECASE)
_HASHTAG = re.compile(r"(?<!\w)#\w+")
_MENTION = re.compile(r"(?<!\w)@\w{1,15}")


@dataclass(frozen=True)
class Draft:
    """A post as the model sees it: text, media kind and the planned instant."""

    text: str
    media: MediaKind | None
    at: datetime


@dataclass(frozen=True)
class PastPost:
    """A measured post of the history: its draft and what it earned."""

    account_id: str
    timezone: str  # the account's IANA zone: hours are local
    draft: Draft
    impressions: int
    engagement_rate: float


def features(draft: Draft, zone: ZoneInfo, previous_at: datetime | None) -> list[float]:
    """The draft's feature vector, in FEATURE_NAMES order."""
    text = unicodedata.normalize("NFC", draft.text)
    local = draft.at.astimezone(zone)
    if previous_at is None or previous_at >= draft.at:
        gap = MAX_GAP_HOURS
    else:
        gap = min((draft.at - previous_at).total_seconds() / 3600, MAX_GAP_HOURS)
    return [
        float(len(text)),
        float(len(_LINK.findall(text))),
        float(len(_HASHTAG.findall(text))),
        float(len(_MENTION.findall(text))),
        MEDIA_CODES[draft.media],
        1.0 if "?" in text else 0.0,
        float(local.weekday() * 24 + local.hour),
        float(local.hour),
        1.0 if local.weekday() >= 5 else 0.0,
        round(gap, 3),
    ]


def history_rows(history: Sequence[PastPost]) -> list[list[float]]:
    """Feature rows of past posts (oldest first), each in its account's zone; recency
    from each post's predecessor on the same account."""
    previous: dict[str, datetime] = {}
    zones: dict[str, ZoneInfo] = {}
    rows = []
    for post in history:
        zone = zones.setdefault(post.timezone, ZoneInfo(post.timezone))
        rows.append(features(post.draft, zone, previous.get(post.account_id)))
        previous[post.account_id] = post.draft.at
    return rows


def previous_before(history: Sequence[PastPost], at: datetime) -> datetime | None:
    """The latest publication of the history before `at`."""
    earlier = [post.draft.at for post in history if post.draft.at < at]
    return max(earlier) if earlier else None


def describe_value(name: str, value: float) -> str:
    """A feature's value as a person reads it."""
    if name == "media":
        return {0: "none", 1: "image", 2: "gif", 3: "video"}[int(value)]
    if name in ("question", "weekend"):
        return "yes" if value else "no"
    if name == "hour_of_week":
        days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
        return f"{days[int(value) // 24]} {int(value) % 24:02d}:00"
    if name == "hours_since_previous":
        return f"{value:g} h"
    return f"{value:g}"
