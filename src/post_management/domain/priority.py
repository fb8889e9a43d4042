"""Parsing the priority strings of the REST contract."""

from __future__ import annotations

from post_management.domain.errors import InvalidArgument
from post_management.domain.post import Priority
from post_management.domain.reasons import Reason

__all__ = ["Priority", "parse_priority", "priority_name"]

_BY_NAME = {priority.name.lower(): priority for priority in Priority}


def parse_priority(text: str | None, field: str = "priority") -> Priority:
    """ "urgent", "high", "normal" or "low" in any case; empty means NORMAL."""
    name = (text or "").strip().lower()
    if not name:
        return Priority.NORMAL
    try:
        return _BY_NAME[name]
    except KeyError:
        allowed = ", ".join(_BY_NAME)
        error = InvalidArgument.for_field(
            field,
            f"{text!r} is not a priority; use one of: {allowed}",
            reason=Reason.UNKNOWN_PRIORITY,
        )
        error.metadata["allowed_values"] = allowed
        raise error from None


def priority_name(priority: Priority) -> str:
    """The lower-case name used on the wire ("urgent", ...)."""
    return priority.name.lower()
