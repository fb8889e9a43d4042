"""Weighted length as X counts it (twitter-text config v3)."""

from __future__ import annotations

import time

import pytest

from post_management.domain.content import (
    MAX_TEXT_CODE_POINTS,
    MAX_WEIGHTED_LENGTH,
    URL_WEIGHT,
    content_violations,
    weighted_length,
)


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


def test_many_urls_are_weighed_in_linear_time() -> None:
    text = "https://a.b " * 100_000
    started = time.monotonic()
    assert weighted_length(text) == 100_000 * (URL_WEIGHT + 1)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("size", [MAX_TEXT_CODE_POINTS + 1, 16 * 1024 * 1024])
def test_a_huge_text_is_refused_without_weighing_it(size: int) -> None:
    started = time.monotonic()
    problems = content_violations("a" * size, [], "")
    assert time.monotonic() - started < 2
    assert [v.field for v in problems] == ["post.text"]
    assert f"{size} characters long" in problems[0].description


def test_ids_with_a_trailing_newline_are_refused() -> None:
    problems = content_violations("hi", ["123\n"], "456\n")
    assert [v.field for v in problems] == ["post.media_ids[0]", "post.reply_to_x_post_id"]
