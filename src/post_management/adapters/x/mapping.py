"""From HTTP responses and exceptions to the port's typed outcomes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import requests
import tweepy
from urllib3.exceptions import NewConnectionError

from post_management.ports.x_api import (
    AccountSuspended,
    Failure,
    PermanentFailure,
    PostMetrics,
    Quota,
    RateLimited,
    RateLimitInfo,
    Unauthorized,
    UnknownOutcome,
    UserMetrics,
    XPost,
)

DUPLICATE_DETAIL = "duplicate content"
SUSPENDED_TYPE = "problems/user-suspended"
DEFAULT_WINDOW = timedelta(minutes=15)  # X's window when a 429 names no reset


def _quota(headers: Mapping[str, str], prefix: str) -> Quota | None:
    try:
        return Quota(
            limit=int(headers[f"{prefix}-limit"]),
            remaining=int(headers[f"{prefix}-remaining"]),
            reset_at=datetime.fromtimestamp(int(headers[f"{prefix}-reset"]), UTC),
        )
    except (KeyError, ValueError):
        return None


def rate_limit_from(headers: Mapping[str, str]) -> RateLimitInfo | None:
    info = RateLimitInfo(
        window=_quota(headers, "x-rate-limit"),
        user_day=_quota(headers, "x-user-limit-24hour"),
        app_day=_quota(headers, "x-app-limit-24hour"),
    )
    return info if (info.window or info.user_day or info.app_day) else None


class HttpAnswer(Protocol):
    """An HTTP answer of X as the mapping reads it: a requests.Response, or the
    asynchronous client's answer (adapters/x/poster.py)."""

    @property
    def status_code(self) -> int: ...

    @property
    def reason(self) -> str | None: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def json(self) -> Any: ...


def json_body(response: HttpAnswer) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _problem(response: HttpAnswer) -> tuple[str, str]:
    """(type, human-readable reason) of an X error body, v2 or v1.1 shaped."""
    body = json_body(response)
    type_ = str(body.get("type", ""))
    parts = [str(body[k]) for k in ("title", "detail") if body.get(k)]
    for error in body.get("errors", []) if isinstance(body.get("errors"), list) else []:
        if isinstance(error, dict) and error.get("message"):
            parts.append(str(error["message"]))
    reason = ": ".join(parts) or f"HTTP {response.status_code} {response.reason}"
    return type_, reason


def is_duplicate(exc: tweepy.HTTPException) -> bool:
    return is_duplicate_answer(exc.response)


def is_duplicate_answer(response: HttpAnswer) -> bool:
    _, reason = _problem(response)
    return response.status_code == 403 and DUPLICATE_DETAIL in reason.lower()


def _rate_limited(response: HttpAnswer, info: RateLimitInfo | None) -> RateLimited:
    reset_at = info.blocked_until() if info else None
    quota = info.window if info else None
    if info and reset_at is not None:
        spent = [q for q in (info.window, info.user_day, info.app_day) if q and q.remaining <= 0]
        quota = max(spent, key=lambda q: q.reset_at)
    if reset_at is None:
        reset_at = quota.reset_at if quota else _answered_at(response) + DEFAULT_WINDOW
    return RateLimited(
        reset_at=reset_at,
        limit=quota.limit if quota else None,
        remaining=quota.remaining if quota else None,
        rate_limit=info,
    )


def _answered_at(response: HttpAnswer) -> datetime:
    """When X answered, by X's own clock (its Date header): a worker's clock may be
    off. The process clock only when X sent no readable date."""
    try:
        answered = parsedate_to_datetime(response.headers.get("date", ""))
    except (TypeError, ValueError):
        return datetime.now(UTC)
    return answered if answered.tzinfo else answered.replace(tzinfo=UTC)


def from_http_error(exc: tweepy.HTTPException) -> Failure:
    return from_http_answer(exc.response)


def from_http_answer(response: HttpAnswer) -> Failure:
    """An answer of X that is not a success."""
    status = response.status_code
    info = rate_limit_from(response.headers)
    type_, reason = _problem(response)
    if status == 401:
        return Unauthorized(reason)
    if status == 429:
        return _rate_limited(response, info)
    if status == 403 and (type_.endswith(SUSPENDED_TYPE) or "suspended" in reason.lower()):
        return AccountSuspended(reason, rate_limit=info)
    if status >= 500:
        return UnknownOutcome(f"X answered {status}: {reason}")
    return PermanentFailure(reason, status, rate_limit=info)


def _never_connected(exc: BaseException) -> bool:
    if isinstance(exc, requests.ConnectTimeout):
        return True
    seen: BaseException | None = exc
    for _ in range(8):  # the cause chain is short; bound it anyway
        if seen is None:
            return False
        if isinstance(seen, NewConnectionError):
            return True
        for arg in getattr(seen, "args", ()):
            if isinstance(arg, NewConnectionError):
                return True
            reason = getattr(arg, "reason", None)
            if isinstance(reason, NewConnectionError):
                return True
        seen = seen.__cause__ or seen.__context__
    return False


def from_exception(exc: Exception) -> Failure:
    """Any exception of a call to X; unknown ones are re-raised as bugs."""
    if isinstance(exc, tweepy.HTTPException):
        return from_http_error(exc)
    transport = exc
    if isinstance(exc, tweepy.TweepyException) and isinstance(
        exc.__context__, requests.RequestException
    ):
        transport = exc.__context__  # tweepy.API wraps transport errors
    if isinstance(transport, requests.Timeout):
        sent = not isinstance(transport, requests.ConnectTimeout)
        return UnknownOutcome(f"timeout: {type(transport).__name__}", request_sent=sent)
    if isinstance(transport, requests.RequestException):
        return UnknownOutcome(
            f"connection error: {type(transport).__name__}",
            request_sent=not _never_connected(transport),
        )
    if isinstance(exc, tweepy.TweepyException):  # e.g. an unparseable answer
        return UnknownOutcome(f"{type(exc).__name__}: {str(exc)[:200]}")
    raise exc


def _parse_time(raw: object) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _int(values: Mapping[str, Any], key: str) -> int | None:
    value = values.get(key)
    return int(value) if isinstance(value, int) else None


def post_from_json(data: Mapping[str, Any], *, detailed: bool = False) -> XPost:
    """`detailed`: attachments and entities were asked for, so their absence means
    no media and no links."""
    public = data.get("public_metrics")
    private = data.get("non_public_metrics") or {}
    metrics = None
    if isinstance(public, dict):
        metrics = PostMetrics(
            impressions=int(public.get("impression_count", 0)),
            likes=int(public.get("like_count", 0)),
            reposts=int(public.get("retweet_count", 0)),
            replies=int(public.get("reply_count", 0)),
            quotes=int(public.get("quote_count", 0)),
            bookmarks=int(public.get("bookmark_count", 0)),
            url_link_clicks=_int(private, "url_link_clicks"),
            user_profile_clicks=_int(private, "user_profile_clicks"),
            engagements=_int(private, "engagements"),
        )
    author = data.get("author_id")
    return XPost(
        id=str(data["id"]),
        text=str(data.get("text", "")),
        author_id=str(author) if author is not None else None,
        created_at=_parse_time(data.get("created_at")),
        metrics=metrics,
        media_keys=_media_keys(data) if detailed else None,
        urls=_expanded_urls(data) if detailed else None,
        in_reply_to=_replied_to(data),
    )


def _replied_to(data: Mapping[str, Any]) -> str | None:
    references = data.get("referenced_tweets")
    for ref in references if isinstance(references, list) else []:
        if isinstance(ref, dict) and ref.get("type") == "replied_to" and ref.get("id"):
            return str(ref["id"])
    return None


def _media_keys(data: Mapping[str, Any]) -> tuple[str, ...]:
    attachments = data.get("attachments")
    keys = attachments.get("media_keys") if isinstance(attachments, dict) else None
    return tuple(str(k) for k in keys) if isinstance(keys, list) else ()


def _expanded_urls(data: Mapping[str, Any]) -> tuple[str, ...]:
    entities = data.get("entities")
    urls = entities.get("urls") if isinstance(entities, dict) else None
    if not isinstance(urls, list):
        return ()
    return tuple(
        str(u.get("expanded_url") or u.get("url") or "") for u in urls if isinstance(u, dict)
    )


def missing_ids(body: Mapping[str, Any]) -> tuple[str, ...]:
    """Ids X reported as not found (deleted, or never existed)."""
    errors = body.get("errors")
    if not isinstance(errors, list):
        return ()
    return tuple(
        str(e.get("resource_id") or e.get("value"))
        for e in errors
        if isinstance(e, dict) and str(e.get("type", "")).endswith("resource-not-found")
    )


def user_metrics(raw: object) -> UserMetrics | None:
    """`public_metrics` of a user object; None when absent or incomplete."""
    if not isinstance(raw, Mapping):
        return None
    counts = [
        _int(raw, key)
        for key in ("followers_count", "following_count", "tweet_count", "listed_count")
    ]
    if any(count is None for count in counts):
        return None
    followers, following, posts, listed = (int(count or 0) for count in counts)
    return UserMetrics(followers, following, posts, listed)
