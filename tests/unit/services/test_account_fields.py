"""Account fields read at the edge: typed values, every bad field in one error."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from post_management.domain.posting_rules import PostingRules, QuietHours
from post_management.domain.reasons import Reason
from post_management.services.accounts.accounts import BudgetChange, read_fields


def test_good_fields_become_typed_values() -> None:
    fields = read_fields(
        handle="@someone",
        timezone="Europe/Berlin",
        posting_rules={
            "min_interval_minutes": 30,
            "quiet_hours": {"start": "22:00", "end": "07:00"},
        },
    )
    assert fields.invalid is None
    assert fields.timezone == ZoneInfo("Europe/Berlin")
    assert isinstance(fields.posting_rules, PostingRules)
    assert fields.posting_rules.min_interval_minutes == 30
    assert fields.posting_rules.quiet_hours is not None
    assert isinstance(fields.posting_rules.quiet_hours, QuietHours)


def test_every_bad_field_is_in_one_error() -> None:
    fields = read_fields(
        handle="not a handle!",
        x_user_id="abc",
        timezone="Mars/Base",
        posting_rules={"min_interval_minutes": -1},
        budget=BudgetChange(-1),
    )
    assert fields.invalid is not None
    assert fields.invalid.reason == Reason.INVALID_ARGUMENT
    assert [v.field for v in fields.invalid.violations] == [
        "account.x_monthly_budget_micros",
        "account.handle",
        "account.x_user_id",
        "account.timezone",
        "account.posting_rules.min_interval_minutes",
    ]
    assert fields.timezone is None and fields.posting_rules is None


def test_bad_rules_alone_keep_their_reason() -> None:
    fields = read_fields(timezone="UTC", posting_rules={"slots": [{"time": "25:00"}]})
    assert fields.invalid is not None
    assert fields.invalid.reason == Reason.INVALID_POSTING_RULES
    assert [v.field for v in fields.invalid.violations] == ["account.posting_rules.slots[0].time"]
    assert fields.timezone == ZoneInfo("UTC")


def test_a_bad_zone_alone_is_named() -> None:
    fields = read_fields(timezone="posixrules")
    assert fields.invalid is not None
    assert [v.field for v in fields.invalid.violations] == ["account.timezone"]
