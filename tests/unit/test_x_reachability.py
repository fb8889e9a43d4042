"""The X reachability that /health?detail=true reports, as requests to X go."""

from __future__ import annotations

import pytest
import requests
from requests.models import PreparedRequest, Response

from post_management.adapters.x.reachability import X_REACHABILITY
from post_management.adapters.x.telemetry import observed_send


def _request() -> PreparedRequest:
    return requests.Request("POST", "https://api.twitter.com/2/tweets").prepare()


def _answer(status: int) -> Response:
    response = Response()
    response.status_code = status
    return response


def test_a_request_without_answer_or_with_a_5xx_makes_x_unreachable_until_one_gets_through() -> (
    None
):
    def refused() -> Response:
        raise requests.ConnectionError("refused")

    with pytest.raises(requests.ConnectionError):
        observed_send(_request(), "POST /2/tweets", refused)
    state = X_REACHABILITY.snapshot()
    assert not state.reachable
    assert state.last_error == "POST /2/tweets: ConnectionError"
    assert state.last_error_at is not None

    observed_send(_request(), "POST /2/tweets", lambda: _answer(201))
    state = X_REACHABILITY.snapshot()
    assert state.reachable and state.last_error == "POST /2/tweets: ConnectionError"

    observed_send(_request(), "POST /2/tweets", lambda: _answer(503))
    assert X_REACHABILITY.snapshot().reachable is False
    assert X_REACHABILITY.snapshot().last_error == "POST /2/tweets: HTTP 503"
    # A refusal (4xx) is an answer: X is reachable.
    observed_send(_request(), "POST /2/tweets", lambda: _answer(429))
    assert X_REACHABILITY.snapshot().reachable
