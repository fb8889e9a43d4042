from __future__ import annotations

from datetime import UTC, datetime, timedelta

from post_management.domain.duplicates import find_duplicate, is_duplicate, normalize_text

AT = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)


def test_normalization_is_nfc_with_whitespace_collapsed() -> None:
    assert normalize_text("  Caf\u0065\u0301\n\tau  lait ") == "Caf\u00e9 au lait"
    assert normalize_text("a\u00a0b") == "a b"


def test_the_same_text_within_24_hours_is_a_duplicate() -> None:
    others = [("Hello   world", AT - timedelta(hours=23, minutes=59))]
    assert find_duplicate("Hello world", AT, others) == AT - timedelta(hours=23, minutes=59)
    assert is_duplicate("Hello world", AT, [("Hello world", AT + timedelta(hours=3))])


def test_24_hours_apart_or_more_is_not_a_duplicate() -> None:
    assert not is_duplicate("Hello world", AT, [("Hello world", AT - timedelta(hours=24))])


def test_case_matters_as_it_does_on_x() -> None:
    assert not is_duplicate("Hello world", AT, [("hello world", AT)])


def test_the_nearest_match_is_reported() -> None:
    others = [("x", AT - timedelta(hours=5)), ("x", AT + timedelta(hours=1)), ("y", AT)]
    assert find_duplicate("x", AT, others) == AT + timedelta(hours=1)
