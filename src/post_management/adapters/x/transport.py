"""The requests transport under tweepy: timeouts, no resends, optional base URL.

tweepy hard-codes https://api.twitter.com and https://upload.twitter.com;
mounting this adapter on a tweepy session sends those requests to another
base URL (the local emulator) instead. It also gives tweepy.Client, which
has no timeout setting, a default timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import requests
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest, Response

from post_management.adapters.x.telemetry import endpoint_of, observed_send
from post_management.observability import crash_points

X_PREFIXES = (
    "https://api.twitter.com/",
    "https://upload.twitter.com/",
    "https://api.x.com/",
    "https://upload.x.com/",
)

# Every media command (INIT, APPEND, FINALIZE, a simple upload) is a POST here.
MEDIA_UPLOAD = "POST /1.1/media/upload.json"

Timeout = float | tuple[float, float] | tuple[float, None] | None

# Loggers that print Authorization headers or OAuth parameters at DEBUG.
_SECRET_LOGGERS = (
    "tweepy.client",
    "tweepy.asynchronous.client",
    "tweepy.api",
    "requests_oauthlib.oauth1_auth",
    "oauthlib.oauth1.rfc5849",
    "oauthlib.oauth1.rfc5849.signature",
    "oauthlib.oauth1.rfc5849.utils",
)


class _DropDebug(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


def silence_secret_debug_logs() -> None:
    """Drop DEBUG records of the libraries that log tokens, even at LOG_LEVEL=DEBUG."""
    for name in _SECRET_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropDebug) for f in logger.filters):
            logger.addFilter(_DropDebug())


class XTransport(HTTPAdapter):
    def __init__(self, base_url: str | None, timeout: tuple[float, float]) -> None:
        # No automatic retries: resending a create after a lost answer double-posts.
        super().__init__(max_retries=0)
        self._base_url = base_url.rstrip("/") + "/" if base_url else None
        self._timeout = timeout

    def rewrite(self, url: str) -> str:
        if self._base_url is None:
            return url  # pragma: no cover - real X only: tests point every call at the emulator
        for prefix in X_PREFIXES:
            if url.startswith(prefix):
                return self._base_url + url[len(prefix) :]
        return url

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: Timeout = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> Response:
        # Named after X's URL, before it is pointed elsewhere (the emulator).
        endpoint = endpoint_of(request.method, request.url)
        if endpoint == MEDIA_UPLOAD:
            crash_points.crash_point(crash_points.MID_MEDIA_UPLOAD)
        if request.url is not None:
            request.url = self.rewrite(request.url)
        return observed_send(
            request,
            endpoint,
            lambda: super(XTransport, self).send(
                request,
                stream=stream,
                timeout=self._timeout if timeout is None else timeout,
                verify=verify,
                cert=cert,
                proxies=proxies,
            ),
        )


def mount(session: requests.Session, transport: XTransport) -> None:
    for prefix in X_PREFIXES:
        session.mount(prefix, transport)
