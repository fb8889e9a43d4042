"""twitter-text's own weighted-length conformance cases, run against domain/content.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from post_management.domain.content import MAX_WEIGHTED_LENGTH, content_violations, weighted_length

_CASES = Path(__file__).parent / "conformance" / "twitter_text_validate.yml"
_GROUPS = ("WeightedTweetsWithDiscountedEmojiCounterTest", "UnicodeDirectionalMarkerCounterTest")


def _cases() -> list[Any]:
    tests = yaml.safe_load(_CASES.read_text(encoding="utf-8"))["tests"]
    return [
        pytest.param(case["text"], case["expected"], id=f"{group}: {case['description']}")
        for group in _GROUPS
        for case in tests[group]
    ]


def test_all_twenty_four_cases_are_vendored() -> None:
    assert len(_cases()) == 24


@pytest.mark.parametrize(("text", "expected"), _cases())
def test_weighted_length_matches_twitter_text(text: str, expected: dict[str, Any]) -> None:
    assert weighted_length(text) == expected["weightedLength"]
    text_problems = [v for v in content_violations(text, [], "") if v.field == "post.text"]
    # X's "valid": within 280 and free of the characters it refuses (an empty text
    # is invalid for X as well as here).
    assert (not text_problems) == expected["valid"]
    assert expected["valid"] == (0 < expected["weightedLength"] <= MAX_WEIGHTED_LENGTH) or (
        not expected["valid"]
    )
