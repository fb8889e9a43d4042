"""Spam and offensive-content rules on a labelled set, with the real classifier
(alt-profanity-check's model on scikit-learn, adapters/profanity.py).

The set (tests/integration/data/content_labelled.yaml) holds clean marketing copy,
which must pass untouched, and stuffed, flooded, spam-linked and offensive texts, each
labelled with the rule it must trip. docs/security.md reports the rates measured here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from post_management.adapters.profanity import ProfanityCheck
from post_management.domain.content_rules import EXCERPT_LENGTH, Rule, content_findings

_SET = yaml.safe_load(
    (Path(__file__).parent / "data" / "content_labelled.yaml").read_text(encoding="utf-8")
)


@pytest.fixture(scope="module")
def classifier() -> ProfanityCheck:
    return ProfanityCheck()


def test_the_labelled_set_is_large_enough_to_mean_something() -> None:
    assert len(_SET["clean"]) >= 40
    assert {item["rule"] for item in _SET["flagged"]} == {rule.value for rule in Rule}


def test_no_clean_marketing_copy_is_flagged(classifier: ProfanityCheck) -> None:
    flagged = {
        text: found
        for text in _SET["clean"]
        if (found := content_findings(text, classifier.scores))
    }
    false_positive_rate = len(flagged) / len(_SET["clean"])
    assert false_positive_rate == 0, flagged


@pytest.mark.parametrize("item", _SET["flagged"], ids=lambda item: item["text"][:30])
def test_each_labelled_text_trips_its_rule(
    item: dict[str, Any], classifier: ProfanityCheck
) -> None:
    findings = content_findings(item["text"], classifier.scores)
    matching = [f for f in findings if f.rule.value == item["rule"]]
    assert matching, findings
    (finding,) = matching
    assert 0.5 <= finding.score <= 1
    assert finding.excerpt and len(finding.excerpt) <= EXCERPT_LENGTH


def test_the_offensive_excerpt_is_the_offending_word(classifier: ProfanityCheck) -> None:
    (finding,) = content_findings(
        "Our launch went great but their CEO is a moron", classifier.scores
    )
    assert finding.rule is Rule.OFFENSIVE_LANGUAGE and finding.excerpt == "moron"
