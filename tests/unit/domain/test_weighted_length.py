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
        # Sequences newer than Unicode 12 (twitter-text's emoji data) are one emoji too.
        ("❤️\u200d🔥", 2),  # heart on fire, 13.1
        ("😮\u200d💨", 2),  # face exhaling, 13.1
        ("🧑\u200d🎄", 2),  # mx claus, 13.0
        ("🏳️\u200d⚧️", 2),  # transgender flag, 13.0
        ("🫱🏼\u200d🫲🏿", 2),  # handshake with two skin tones, 14.0
        ("🐦\u200d⬛", 2),  # black bird, 15.0
        ("🙂\u200d↔️", 2),  # head shaking horizontally, 15.1
        ("⛓️\u200d💥", 2),  # broken chain, 15.1
        ("👩🏽\u200d❤️\u200d💋\u200d👨🏿", 2),  # kiss with skin tones, 13.1
        # Where X finds a URL: a known top-level domain, with or without a scheme.
        ("visit example.com", 6 + URL_WEIGHT),
        ("https://a.b", 11),  # "b" is no top-level domain: plain text
        ("see http://x.com/path). done", 4 + URL_WEIGHT + 7),
    ],
)
def test_weights(text: str, weight: int) -> None:
    assert weighted_length(text) == weight


def test_the_limit_is_inclusive() -> None:
    assert content_violations("a" * MAX_WEIGHTED_LENGTH, [], "") == []
    assert content_violations("😀" * (MAX_WEIGHTED_LENGTH // 2), [], "") == []
    too_long = content_violations("😀" * (MAX_WEIGHTED_LENGTH // 2) + "a", [], "")
    assert [v.field for v in too_long] == ["post.text"]


@pytest.mark.no_cover  # a CPU-time bound: measured without the coverage tracer
def test_many_urls_are_weighed_in_linear_time() -> None:
    text = "https://a.co " * 100_000
    started = time.process_time()
    assert weighted_length(text) == 100_000 * (URL_WEIGHT + 1)
    assert time.process_time() - started < 2


@pytest.mark.no_cover  # a CPU-time bound: measured without the coverage tracer
@pytest.mark.parametrize(
    "text",
    [
        "a." * (MAX_TEXT_CODE_POINTS // 2),
        "a-" * (MAX_TEXT_CODE_POINTS // 2) + ".com",
        "é." * (MAX_TEXT_CODE_POINTS // 2 - 10) + "日.com",
        "http://x.com/" + "(" * (MAX_TEXT_CODE_POINTS - 20),
        "x.com/" + "(a" * (MAX_TEXT_CODE_POINTS // 2 - 10),
        "a" * (MAX_TEXT_CODE_POINTS - 4) + ".com",
    ],
)
def test_texts_that_make_a_backtracking_url_pattern_crawl_are_weighed_fast(text: str) -> None:
    # twitter-text's single regular expression takes minutes on the first of these.
    started = time.process_time()
    weighted_length(text)
    assert time.process_time() - started < 1


@pytest.mark.no_cover  # a CPU-time bound: measured without the coverage tracer
@pytest.mark.parametrize("size", [MAX_TEXT_CODE_POINTS + 1, 16 * 1024 * 1024])
def test_a_huge_text_is_refused_without_weighing_it(size: int) -> None:
    started = time.process_time()
    problems = content_violations("a" * size, [], "")
    assert time.process_time() - started < 2
    assert [v.field for v in problems] == ["post.text"]
    assert f"{size} characters long" in problems[0].description


def test_ids_with_a_trailing_newline_are_refused() -> None:
    problems = content_violations("hi", ["123\n"], "456\n")
    assert [v.field for v in problems] == ["post.media_ids[0]", "post.reply_to_x_post_id"]
