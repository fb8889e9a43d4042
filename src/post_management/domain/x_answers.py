"""X's answers to the calls the publishing engine decides on, as plain values.

Rate-limit headers, the failures every call shares, and the answers to a create-post
call. The X API port (ports/x_api.py) returns them; the outcome table
(domain/publishing/outcomes.py) turns them into settlements.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Quota:
    limit: int
    remaining: int
    reset_at: datetime  # UTC


@dataclass(frozen=True)
class RateLimitInfo:
    """Rate-limit state X reported in a response's headers.

    `window` is the endpoint's 15-minute window (x-rate-limit-*); the daily
    quotas come from x-user-limit-24hour-* and x-app-limit-24hour-*.
    """

    window: Quota | None = None
    user_day: Quota | None = None
    app_day: Quota | None = None

    def blocked_until(self) -> datetime | None:
        """The latest reset among spent quotas, or None when none is spent."""
        spent = [
            q.reset_at for q in (self.window, self.user_day, self.app_day) if q and q.remaining <= 0
        ]
        return max(spent) if spent else None


# --- outcomes shared by every call ----------------------------------------------


@dataclass(frozen=True)
class PermanentFailure:
    """A 4xx other than 401/429/duplicate/suspended: retrying will not help."""

    reason: str
    status: int | None = None
    rate_limit: RateLimitInfo | None = None


@dataclass(frozen=True)
class RateLimited:
    reset_at: datetime  # UTC; when the spent quota refills
    limit: int | None = None
    remaining: int | None = None
    rate_limit: RateLimitInfo | None = None


@dataclass(frozen=True)
class UnknownOutcome:
    """Timeout, connection error or 5xx: X may or may not have acted.

    `request_sent` is False only when the connection was never established,
    so the request certainly did not reach X.
    """

    reason: str
    request_sent: bool = True


@dataclass(frozen=True)
class AccountSuspended:
    reason: str
    rate_limit: RateLimitInfo | None = None


@dataclass(frozen=True)
class Unauthorized:
    """401: the account's tokens are revoked or invalid."""

    reason: str = "unauthorized"


Failure = PermanentFailure | RateLimited | UnknownOutcome | AccountSuspended | Unauthorized


# --- create -------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    x_post_id: str
    rate_limit: RateLimitInfo | None = None


@dataclass(frozen=True)
class Duplicate:
    """403 duplicate content. The caller treats it as an unknown outcome: an
    earlier attempt whose answer was lost may have published the same text."""

    rate_limit: RateLimitInfo | None = None


PublishOutcome = Published | Duplicate | Failure
