"""Scores of texts seen before come from a bounded cache, not the model again."""

from __future__ import annotations

from post_management.adapters.profanity import ProfanityCheck


class CountingModel:
    def __init__(self) -> None:
        self.scored: list[str] = []

    def __call__(self, texts: list[str]) -> list[float]:
        self.scored += texts
        return [len(text) / 100 for text in texts]


def test_a_text_is_scored_once_and_answers_keep_their_order() -> None:
    model = CountingModel()
    check = ProfanityCheck(model, cached=10)
    assert check.scores(["ab", "abc"]) == [0.02, 0.03]
    assert check.scores(["abc", "ab", "abcd", "abcd"]) == [0.03, 0.02, 0.04, 0.04]
    assert model.scored == ["ab", "abc", "abcd"]  # each text went to the model once


def test_the_cache_is_bounded_and_forgets_the_least_recently_used() -> None:
    model = CountingModel()
    check = ProfanityCheck(model, cached=2)
    check.scores(["a"])
    check.scores(["b"])
    check.scores(["a"])  # a is now the most recent
    check.scores(["c"])  # b goes
    check.scores(["a", "b"])
    assert model.scored == ["a", "b", "c", "b"]
