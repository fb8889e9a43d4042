"""Weighted length as X counts it (twitter-text config v3)."""

from __future__ import annotations

import pytest

from post_management.domain.content import MAX_WEIGHTED_LENGTH, content_violations, weighted_length


@pytest.mark.parametrize(
    ("text", "weight"),
    [
        ("abc", 3),
        ("é", 1),  # NFC: one character
        ("e\u0301", 1),  # the same é, decomposed
        ("日本", 4),
        ("hello 😀 world", 14),
        ("https://example.com/a/very/long/path?with=query x", 25),
        ("👨\u200d👩\u200d👧\u200d👦", 2),  # a family: one emoji of seven code points
        ("👍🏽", 2),  # skin tone
        ("🇩🇪", 2),  # flag
        ("❤️", 2),  # with variation selector
        ("1️⃣", 2),  # keycap
        ("🏳️\u200d🌈", 2),
        ("\u201chi\u201d", 4),  # typographic quotes are narrow
    ],
)
def test_weights(text: str, weight: int) -> None:
    assert weighted_length(text) == weight


def test_the_limit_is_inclusive() -> None:
    assert content_violations("a" * MAX_WEIGHTED_LENGTH, [], "") == []
    assert content_violations("😀" * (MAX_WEIGHTED_LENGTH // 2), [], "") == []
    too_long = content_violations("😀" * (MAX_WEIGHTED_LENGTH // 2) + "a", [], "")
    assert [v.field for v in too_long] == ["post.text"]
