"""A 429 without rate-limit headers waits X's default window from X's own clock."""

from __future__ import annotations

from datetime import UTC, datetime

import requests
import tweepy

from post_management.adapters.x.mapping import from_http_error
from post_management.ports.x_api import RateLimited


def too_many(headers: dict[str, str]) -> tweepy.TooManyRequests:
    response = requests.Response()
    response.status_code = 429
    response.headers.update(headers)
    response._content = b'{"title": "Too Many Requests", "detail": "Too Many Requests"}'
    return tweepy.TooManyRequests(response)


def test_the_default_window_counts_from_xs_date_not_the_workers_clock() -> None:
    # X's Date header says 10:00: the wait ends at 10:15 whatever this process's clock.
    outcome = from_http_error(too_many({"date": "Sun, 06 Dec 2026 10:00:00 GMT"}))
    assert isinstance(outcome, RateLimited)
    assert outcome.reset_at == datetime(2026, 12, 6, 10, 15, tzinfo=UTC)


def test_without_a_date_the_process_clock_stands_in() -> None:
    before = datetime.now(UTC)
    outcome = from_http_error(too_many({}))
    assert isinstance(outcome, RateLimited)
    assert 14 * 60 < (outcome.reset_at - before).total_seconds() <= 15 * 60 + 5
