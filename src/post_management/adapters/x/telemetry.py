"""Each HTTP request to X: a client span, W3C trace context, and Prometheus counts.

The endpoint label is the method and path template ("POST /2/tweets",
"GET /2/users/:id/tweets"), never an account: cardinality stays bounded.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from urllib.parse import urlsplit

from opentelemetry.trace import Span, SpanKind
from requests.models import PreparedRequest, Response

from post_management.adapters.x.reachability import X_REACHABILITY
from post_management.observability import metrics, tracing

_NUMERIC = re.compile(r"\d+")
_MAX_SEGMENTS = 5


@functools.lru_cache(maxsize=1024)
def endpoint_of(method: str | None, url: str | None) -> str:
    path = urlsplit(url or "").path
    parts = [part for part in path.split("/") if part]
    # The first segment is the API version ("2", "1.1"); numbers after it are ids.
    segments = parts[:1] + [":id" if _NUMERIC.fullmatch(part) else part for part in parts[1:]]
    return f"{(method or 'GET').upper()} /{'/'.join(segments[:_MAX_SEGMENTS])}"


class ObservedCall:
    """One request to X under way: its span, and what its answer tells the metrics."""

    def __init__(self, endpoint: str, span: Span) -> None:
        self.endpoint = endpoint
        self._span = span

    def inject(self, headers: MutableMapping[str, str]) -> None:
        """W3C trace context into the request's headers (after the OAuth signature: it
        covers the URL and parameters, not headers)."""
        carrier: dict[str, str] = {}
        tracing.inject(carrier)
        headers.update(carrier)

    def answered(self, status: int, headers: Mapping[str, str]) -> None:
        metrics.X_REQUESTS.labels(self.endpoint, str(status)).inc()
        X_REACHABILITY.answered(self.endpoint, status)
        self._span.set_attribute("http.response.status_code", status)
        if status >= 400:
            tracing.mark_error(self._span, f"HTTP {status}")
        _rate_limit(self.endpoint, headers)


@contextmanager
def observed_call(method: str | None, endpoint: str) -> Iterator[ObservedCall]:
    """A span named after the endpoint around one request; counted and timed."""
    with tracing.span(
        f"X {endpoint}",
        {"http.request.method": method or "", "x.endpoint": endpoint},
        kind=SpanKind.CLIENT,
    ) as span:
        started = time.perf_counter()
        try:
            yield ObservedCall(endpoint, span)
        except Exception as exc:
            metrics.X_REQUESTS.labels(endpoint, "error").inc()
            X_REACHABILITY.failed(endpoint, type(exc).__name__)
            tracing.mark_error(span, type(exc).__name__)
            raise
        finally:
            metrics.X_LATENCY.labels(endpoint).observe(time.perf_counter() - started)


def observed_send(
    request: PreparedRequest, endpoint: str, send: Callable[[], Response]
) -> Response:
    """Run `send` inside a span named after the endpoint; count and time it."""
    with observed_call(request.method, endpoint) as call:
        call.inject(request.headers)
        response = send()
        call.answered(response.status_code, response.headers)
        return response


def _rate_limit(endpoint: str, headers: Mapping[str, str]) -> None:
    remaining = headers.get("x-rate-limit-remaining")
    reset = headers.get("x-rate-limit-reset")
    try:
        if remaining is not None:
            metrics.X_RATE_REMAINING.labels(endpoint).set(float(remaining))
        if reset is not None:
            metrics.X_RATE_RESET.labels(endpoint).set(float(reset))
    except ValueError:
        pass  # a malformed header is X's problem; the request itself succeeded
