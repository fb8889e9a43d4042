"""Duplicate content: X refuses the same text from one account close together."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import datetime, timedelta

from post_management.domain._clock import require_aware

DUPLICATE_WINDOW = timedelta(hours=24)


def normalize_text(text: str) -> str:
    """NFC with runs of whitespace collapsed to one space and the ends trimmed.

    Case is kept: X treats "Hello" and "hello" as different posts.
    """
    return " ".join(unicodedata.normalize("NFC", text).split())


def find_duplicate(
    text: str,
    at: datetime,
    others: Iterable[tuple[str, datetime]],
    window: timedelta = DUPLICATE_WINDOW,
) -> datetime | None:
    """The time of another post of the same account with the same text less than
    `window` from `at` (before or after), or None. `others` are (text, instant) pairs.
    """
    at = require_aware(at, "at")
    wanted = normalize_text(text)
    matches = [
        instant
        for other_text, instant in others
        if abs(require_aware(instant, "instant") - at) < window
        and normalize_text(other_text) == wanted
    ]
    return min(matches, key=lambda instant: (abs(instant - at), instant), default=None)


def is_duplicate(
    text: str,
    at: datetime,
    others: Iterable[tuple[str, datetime]],
    window: timedelta = DUPLICATE_WINDOW,
) -> bool:
    return find_duplicate(text, at, others, window) is not None
