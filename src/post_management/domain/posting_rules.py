"""An account's posting rules: limits, quiet hours and recurring slots.

All clock times are wall-clock times in the account's IANA zone. Zero in a
limit means "no limit", as in the PostingRules proto message. The JSON form
(`to_json` / `posting_rules_from_json`) mirrors that message and is what the
Account aggregate stores.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass
from datetime import time
from typing import Any

from post_management.domain.errors import FieldViolation, InvalidArgument
from post_management.domain.limits import ensure_at_most
from post_management.domain.reasons import Reason

MAX_MIN_INTERVAL_MINUTES = 7 * 24 * 60
# Far more slots than any posting plan needs; rules are read on every schedule.
MAX_SLOTS = 200
# An ISO weekday list names each day at most once.
MAX_WEEKDAYS = 7
_REASON = Reason.INVALID_POSTING_RULES
CONTENT_POLICY_NAMES = (
    "CONTENT_POLICY_UNSPECIFIED",
    "CONTENT_POLICY_OFF",
    "CONTENT_POLICY_WARN",
    "CONTENT_POLICY_REFUSE",
)
_HH_MM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


@dataclass(frozen=True)
class QuietHours:
    """A daily window [start, end) with no posts; end < start crosses midnight."""

    start: time
    end: time

    def contains(self, wall: time) -> bool:
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end


@dataclass(frozen=True)
class TimeSlot:
    """A recurring time; `weekdays` are ISO (1 = Monday .. 7 = Sunday), empty = every day."""

    time: time
    weekdays: frozenset[int] = frozenset()

    def on(self, iso_weekday: int) -> bool:
        return not self.weekdays or iso_weekday in self.weekdays


@dataclass(frozen=True)
class PostingRules:
    min_interval_minutes: int = 0
    max_posts_per_hour: int = 0
    max_posts_per_day: int = 0
    quiet_hours: QuietHours | None = None
    slots: tuple[TimeSlot, ...] = ()
    # The proto enum name (CONTENT_POLICY_OFF, _WARN, _REFUSE); empty: the default.
    content_policy: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "min_interval_minutes": self.min_interval_minutes,
            "max_posts_per_hour": self.max_posts_per_hour,
            "max_posts_per_day": self.max_posts_per_day,
            "slots": [
                {"weekdays": sorted(slot.weekdays), "time": format_hh_mm(slot.time)}
                for slot in self.slots
            ],
        }
        if self.content_policy:
            data["content_policy"] = self.content_policy
        if self.quiet_hours is not None:
            data["quiet_hours"] = {
                "start": format_hh_mm(self.quiet_hours.start),
                "end": format_hh_mm(self.quiet_hours.end),
            }
        return data


def format_hh_mm(value: time) -> str:
    return value.strftime("%H:%M")


def parse_posting_rules(
    *,
    min_interval_minutes: int = 0,
    max_posts_per_hour: int = 0,
    max_posts_per_day: int = 0,
    quiet_hours_start: str = "",
    quiet_hours_end: str = "",
    slots: Iterable[tuple[Sequence[int], str]] = (),
    prefix: str = "posting_rules",
) -> PostingRules:
    """Validated rules from plain values; InvalidArgument lists every bad field.

    Both quiet-hour ends empty means no quiet hours. Slots are (weekdays,
    "HH:MM") pairs; repeated slots are merged. Sizes are checked before
    contents: more than MAX_SLOTS slots, or MAX_WEEKDAYS weekdays in a slot, is
    refused without looking at any of them.
    """
    slots = list(slots) if not isinstance(slots, Sequence) else slots
    ensure_sizes(slots, (weekdays for weekdays, _ in slots), prefix)
    problems: list[FieldViolation] = []
    limits = {
        "min_interval_minutes": (min_interval_minutes, MAX_MIN_INTERVAL_MINUTES),
        "max_posts_per_hour": (max_posts_per_hour, None),
        "max_posts_per_day": (max_posts_per_day, None),
    }
    for name, (value, ceiling) in limits.items():
        if value < 0:
            problems.append(FieldViolation(f"{prefix}.{name}", "must be 0 (no limit) or more"))
        elif ceiling is not None and value > ceiling:
            problems.append(FieldViolation(f"{prefix}.{name}", f"must be at most {ceiling}"))
    quiet = _parse_quiet_hours(quiet_hours_start, quiet_hours_end, f"{prefix}.quiet_hours")
    problems += quiet[1]
    parsed_slots: set[TimeSlot] = set()
    for index, (weekdays, wall) in enumerate(slots):
        slot, slot_problems = _parse_slot(weekdays, wall, f"{prefix}.slots[{index}]")
        problems += slot_problems
        if slot is not None:
            parsed_slots.add(slot)
    if (
        quiet[0] is not None
        and parsed_slots
        and all(quiet[0].contains(slot.time) for slot in parsed_slots)
    ):
        problems.append(
            FieldViolation(f"{prefix}.slots", "every slot falls inside the quiet hours")
        )
    if problems:
        raise InvalidArgument(
            message="invalid posting rules: "
            + "; ".join(f"{p.field}: {p.description}" for p in problems),
            reason=_REASON,
            violations=problems,
        )
    return PostingRules(
        min_interval_minutes=min_interval_minutes,
        max_posts_per_hour=max_posts_per_hour,
        max_posts_per_day=max_posts_per_day,
        quiet_hours=quiet[0],
        slots=tuple(sorted(parsed_slots, key=lambda s: (s.time, sorted(s.weekdays)))),
    )


def ensure_sizes(slots: Sized, weekday_lists: Iterable[Sized], prefix: str) -> None:
    """INVALID_ARGUMENT for too many slots (checked first, by length alone) or a
    slot with too many weekdays; `weekday_lists` is read only within the cap."""
    ensure_at_most(slots, MAX_SLOTS, f"{prefix}.slots", "slots", _REASON)
    for index, weekdays in enumerate(weekday_lists):
        field = f"{prefix}.slots[{index}].weekdays"
        ensure_at_most(weekdays, MAX_WEEKDAYS, field, "weekdays", _REASON)


def posting_rules_from_json(data: Mapping[str, Any], prefix: str = "posting_rules") -> PostingRules:
    """The inverse of PostingRules.to_json; an empty mapping is "no rules"."""
    quiet = data.get("quiet_hours") or {}
    raw_slots = data.get("slots") or []
    if not isinstance(raw_slots, list):
        raise InvalidArgument.for_field(
            f"{prefix}.slots", "must be a list of slots", reason=_REASON
        )
    ensure_sizes(raw_slots, (_weekdays_of(slot) for slot in raw_slots), prefix)
    policy = data.get("content_policy", "")
    if policy in ("", CONTENT_POLICY_NAMES[0]):
        policy = ""
    elif policy not in CONTENT_POLICY_NAMES:
        raise InvalidArgument.for_field(
            f"{prefix}.content_policy",
            "must be one of " + ", ".join(CONTENT_POLICY_NAMES),
            reason=_REASON,
        )
    rules = parse_posting_rules(
        min_interval_minutes=int(data.get("min_interval_minutes", 0)),
        max_posts_per_hour=int(data.get("max_posts_per_hour", 0)),
        max_posts_per_day=int(data.get("max_posts_per_day", 0)),
        quiet_hours_start=str(quiet.get("start", "")),
        quiet_hours_end=str(quiet.get("end", "")),
        slots=[(_weekdays_of(slot), str(_time_of(slot))) for slot in raw_slots],
        prefix=prefix,
    )
    return dataclasses.replace(rules, content_policy=str(policy))


def _weekdays_of(slot: Any) -> list[int]:
    weekdays = slot.get("weekdays") if isinstance(slot, Mapping) else None
    if not isinstance(weekdays, list):
        return []
    # Anything but an int becomes 0, which the weekday check names as invalid.
    return [day if isinstance(day, int) else 0 for day in weekdays]


def _time_of(slot: Any) -> object:
    return slot.get("time", "") if isinstance(slot, Mapping) else ""


def parse_hh_mm(text: str) -> time | None:
    match = _HH_MM.fullmatch(text.strip())
    return time(int(match[1]), int(match[2])) if match else None


_HH_MM_HELP = "must be a 24-hour time 'HH:MM', e.g. '07:30'"


def _parse_quiet_hours(
    start_text: str, end_text: str, path: str
) -> tuple[QuietHours | None, list[FieldViolation]]:
    if not start_text.strip() and not end_text.strip():
        return None, []
    start, end = parse_hh_mm(start_text), parse_hh_mm(end_text)
    problems = [
        FieldViolation(f"{path}.{name}", _HH_MM_HELP)
        for name, value in (("start", start), ("end", end))
        if value is None
    ]
    if start is None or end is None:
        return None, problems
    if start == end:
        return None, [FieldViolation(f"{path}.end", "must differ from start")]
    return QuietHours(start, end), []


def _parse_slot(
    weekdays: Sequence[int], wall: str, path: str
) -> tuple[TimeSlot | None, list[FieldViolation]]:
    problems = [
        FieldViolation(f"{path}.weekdays[{i}]", "must be an ISO weekday, 1 (Monday) to 7 (Sunday)")
        for i, day in enumerate(weekdays)
        if not 1 <= day <= 7
    ]
    parsed = parse_hh_mm(wall)
    if parsed is None:
        problems.append(FieldViolation(f"{path}.time", _HH_MM_HELP))
    if problems or parsed is None:
        return None, problems
    return TimeSlot(parsed, frozenset(weekdays)), []
