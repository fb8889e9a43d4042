"""The XPoster port over tweepy's asyncio client (tweepy.asynchronous.AsyncClient,
on aiohttp), for the dispatcher's event loop.

tweepy builds each request (create_tweet's JSON body); the transport under it is
ours: one aiohttp session, made on the loop of the first call, carries every
account's create-post calls over one pool of keep-alive connections (the synchronous
client keeps a requests session, and so a connection, per account), to
X_API_BASE_URL when set; requests are signed by adapters/x/oauth.py and spanned,
counted and timed like the synchronous transport's (adapters/x/telemetry.py). Like
that transport it never resends: aiohttp retries a broken keep-alive connection only
for idempotent methods, and a create-post is a POST. It does not read the proxy
environment variables.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
from tweepy.asynchronous import AsyncClient

from post_management.adapters.x.mapping import (
    from_http_answer,
    is_duplicate_answer,
    json_body,
    rate_limit_from,
)
from post_management.adapters.x.oauth import OAuth1Signer
from post_management.adapters.x.settings import XClientSettings
from post_management.adapters.x.telemetry import endpoint_of, observed_call
from post_management.adapters.x.transport import silence_secret_debug_logs
from post_management.ports.x_api import (
    Duplicate,
    Failure,
    NewPost,
    Published,
    PublishOutcome,
    UnknownOutcome,
    XCredentials,
)

log = logging.getLogger(__name__)

X_API = "https://api.twitter.com"  # where tweepy sends v2 calls


class _Answer:
    """An aiohttp answer whose body was read, as adapters/x/mapping.py reads it."""

    def __init__(
        self, status: int, reason: str | None, headers: Mapping[str, str], body: Any
    ) -> None:
        self.status_code = status
        self.reason = reason
        self.headers = headers
        self._body = body

    def json(self) -> Any:
        if isinstance(self._body, ValueError):
            raise self._body
        return self._body

    @classmethod
    async def of(cls, response: aiohttp.ClientResponse) -> _Answer:
        try:
            body: Any = await response.json(content_type=None)
        except ValueError as exc:  # not JSON
            body = exc
        return cls(response.status, response.reason, response.headers, body)


class _Client(AsyncClient):  # type: ignore[misc]  # tweepy is untyped
    """tweepy's asyncio client with its transport replaced: the shared session, the
    base URL (X_API_BASE_URL), our OAuth 1.0a signer (oauthlib's costs several times
    more), each request observed like the synchronous transport's; every answer is
    returned for the caller to map, none raised."""

    def __init__(self, poster: TweepyXPoster, creds: XCredentials) -> None:
        super().__init__(return_type=aiohttp.ClientResponse)  # keeps the rate-limit headers
        self._poster = poster
        self._creds = creds

    async def request(
        self,
        method: str,
        route: str,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        user_auth: bool = False,
    ) -> aiohttp.ClientResponse:
        poster = self._poster
        assert user_auth, "the poster only makes user-context calls"
        url = poster.base_url + route
        headers = {
            "User-Agent": self.user_agent,
            "Authorization": poster.signer.authorization(
                method, url, self._creds.access_token, self._creds.access_token_secret, params
            ),
        }
        with observed_call(method, endpoint_of(method, url)) as call:
            call.inject(headers)
            async with poster.session().request(
                method, url, params=params or None, json=json, headers=headers
            ) as response:
                await response.read()
            call.answered(response.status, response.headers)
        return response


class TweepyXPoster:
    """One instance per process; its calls run on one event loop."""

    def __init__(self, settings: XClientSettings, max_connections: int = 100) -> None:
        silence_secret_debug_logs()
        self._settings = settings
        self._max_connections = max_connections
        self.base_url = (settings.base_url or X_API).rstrip("/")
        self.signer = OAuth1Signer(settings.consumer_key, settings.consumer_secret)
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                cookie_jar=aiohttp.DummyCookieJar(),  # X's API sets none worth keeping
                # The whole call within X_TIMEOUT_SECONDS (one timer per request; a
                # timeout per socket read costs a timer per read).
                timeout=aiohttp.ClientTimeout(
                    total=self._settings.read_timeout,
                    connect=self._settings.connect_timeout,
                ),
            )
        return self._session

    async def create_post(self, creds: XCredentials, post: NewPost) -> PublishOutcome:
        try:
            response: aiohttp.ClientResponse = await _Client(self, creds).create_tweet(
                text=post.text or None,
                media_ids=list(post.media_ids) or None,
                in_reply_to_tweet_id=post.in_reply_to,
                user_auth=True,
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            return _logged(_from_transport_error(exc))
        answer = await _Answer.of(response)
        if not 200 <= answer.status_code < 300:
            if is_duplicate_answer(answer):
                return Duplicate(rate_limit_from(answer.headers))
            return _logged(from_http_answer(answer))
        data = json_body(answer).get("data")
        if not isinstance(data, dict) or "id" not in data:
            return UnknownOutcome(f"X answered {answer.status_code} without a post id")
        return Published(str(data["id"]), rate_limit_from(answer.headers))

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _from_transport_error(exc: BaseException) -> UnknownOutcome:
    """No answer: the request never left when the connection could not be made,
    otherwise X may have stored the post."""
    name = type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
        return UnknownOutcome(f"connection error: {name}", request_sent=False)
    if isinstance(exc, TimeoutError):
        return UnknownOutcome(f"timeout: {name}")
    return UnknownOutcome(f"connection error: {name}")


def _logged(outcome: Failure) -> Failure:
    if isinstance(outcome, UnknownOutcome):
        log.warning("x create_post outcome unknown: %s", outcome.reason)
    return outcome
