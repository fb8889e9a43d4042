"""Each HTTP request to X: a client span, W3C trace context, and Prometheus counts.

The endpoint label is the method and path template ("POST /2/tweets",
"GET /2/users/:id/tweets"), never an account: cardinality stays bounded.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from opentelemetry.trace import SpanKind
from requests.models import PreparedRequest, Response

from post_management.adapters.x.reachability import X_REACHABILITY
from post_management.observability import metrics, tracing

_NUMERIC = re.compile(r"\d+")
_MAX_SEGMENTS = 5


def endpoint_of(method: str | None, url: str | None) -> str:
    path = urlsplit(url or "").path
    parts = [part for part in path.split("/") if part]
    # The first segment is the API version ("2", "1.1"); numbers after it are ids.
    segments = parts[:1] + [":id" if _NUMERIC.fullmatch(part) else part for part in parts[1:]]
    return f"{(method or 'GET').upper()} /{'/'.join(segments[:_MAX_SEGMENTS])}"


def observed_send(
    request: PreparedRequest, endpoint: str, send: Callable[[], Response]
) -> Response:
    """Run `send` inside a span named after the endpoint; count and time it."""
    with tracing.span(
        f"X {endpoint}",
        {"http.request.method": request.method or "", "x.endpoint": endpoint},
        kind=SpanKind.CLIENT,
    ) as span:
        carrier: dict[str, str] = {}
        tracing.inject(carrier)
        # After the OAuth signature: it covers the URL and parameters, not headers.
        request.headers.update(carrier)
        started = time.perf_counter()
        try:
            response = send()
        except Exception as exc:
            metrics.X_REQUESTS.labels(endpoint, "error").inc()
            X_REACHABILITY.failed(endpoint, type(exc).__name__)
            tracing.mark_error(span, type(exc).__name__)
            raise
        finally:
            metrics.X_LATENCY.labels(endpoint).observe(time.perf_counter() - started)
        status = response.status_code
        metrics.X_REQUESTS.labels(endpoint, str(status)).inc()
        X_REACHABILITY.answered(endpoint, status)
        span.set_attribute("http.response.status_code", status)
        if status >= 400:
            tracing.mark_error(span, f"HTTP {status}")
        _rate_limit(endpoint, response)
        return response


def _rate_limit(endpoint: str, response: Response) -> None:
    remaining = response.headers.get("x-rate-limit-remaining")
    reset = response.headers.get("x-rate-limit-reset")
    try:
        if remaining is not None:
            metrics.X_RATE_REMAINING.labels(endpoint).set(float(remaining))
        if reset is not None:
            metrics.X_RATE_RESET.labels(endpoint).set(float(reset))
    except ValueError:
        pass  # a malformed header is X's problem; the request itself succeeded
