"""Size limits on list inputs, checked before any element is looked at.

A request's lists are bounded by these, not by the message size, so the work a
request can cause stays small whatever it carries (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Sized

from post_management.domain.errors import InvalidArgument
from post_management.domain.reasons import Reason


def ensure_at_most(
    items: Sized, maximum: int, field: str, what: str = "items", reason: str = Reason.TOO_MANY_ITEMS
) -> None:
    """INVALID_ARGUMENT when `items` holds more than `maximum`."""
    if len(items) > maximum:
        raise InvalidArgument.for_field(
            field, f"at most {maximum} {what}, got {len(items)}", reason=reason
        )
