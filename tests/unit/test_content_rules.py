"""Content policies, the flood rule on a huge text, and a clean text without the
offensive-language scorer. The rules on the labelled set, with the real classifier,
are checked in tests/integration/test_content_classifier.py."""

from __future__ import annotations

import pytest

from post_management.domain.content_rules import (
    ContentPolicy,
    Finding,
    Rule,
    apply_policy,
    content_findings,
    content_refused,
    policy_of,
)
from post_management.domain.errors import FailedPrecondition


def test_a_mainstream_shortener_and_two_hashtags_are_fine() -> None:
    assert content_findings("Read more https://bit.ly/abc #news #tips", None) == []


def test_policies() -> None:
    findings = [Finding(Rule.HASHTAG_STUFFING, "#a #b #c #d #e #f", 0.6)]
    assert apply_policy(ContentPolicy.OFF, findings) == []
    assert apply_policy(ContentPolicy.WARN, findings) == findings
    assert apply_policy(ContentPolicy.REFUSE, []) == []
    with pytest.raises(FailedPrecondition) as refused:
        apply_policy(ContentPolicy.REFUSE, findings)
    assert refused.value.reason == "CONTENT_POLICY"
    assert [(v.type, v.subject, v.description) for v in refused.value.violations] == [
        ("HASHTAG_STUFFING", "#a #b #c #d #e #f", "score 0.6")
    ]
    assert content_refused(findings).metadata == {"rules": "HASHTAG_STUFFING"}


@pytest.mark.parametrize(
    ("rules", "policy"),
    [
        ({}, ContentPolicy.WARN),
        ({"content_policy": "CONTENT_POLICY_UNSPECIFIED"}, ContentPolicy.WARN),
        ({"content_policy": "CONTENT_POLICY_OFF"}, ContentPolicy.OFF),
        ({"content_policy": "CONTENT_POLICY_REFUSE"}, ContentPolicy.REFUSE),
    ],
)
def test_the_policy_is_read_from_the_posting_rules(
    rules: dict[str, str], policy: ContentPolicy
) -> None:
    assert policy_of(rules) is policy


def test_a_flood_in_a_huge_text_is_found_quickly() -> None:
    import time

    started = time.process_time()
    findings = content_findings("ab" * 12_000 + "!" * 1000, None)
    assert time.process_time() - started < 1
    assert [f.rule for f in findings] == [Rule.REPEATED_CHARACTERS]
