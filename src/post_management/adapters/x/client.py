"""The XApi port over tweepy: v2 Client for posts, v1.1 API for media."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests
import tweepy

from post_management.adapters.x.mapping import (
    from_exception,
    from_http_error,
    is_duplicate,
    json_body,
    missing_ids,
    post_from_json,
    rate_limit_from,
    user_metrics,
)
from post_management.adapters.x.settings import XClientSettings
from post_management.adapters.x.transport import XTransport, mount, silence_secret_debug_logs
from post_management.ports.x_api import (
    MAX_LOOKUP_IDS,
    Deleted,
    DeleteOutcome,
    Duplicate,
    Failure,
    Interrupted,
    LookupOutcome,
    MediaOutcome,
    MediaUploaded,
    MeOutcome,
    NewPost,
    PermanentFailure,
    PostsFound,
    Published,
    PublishOutcome,
    Timeline,
    TimelineOutcome,
    UnknownOutcome,
    XCredentials,
    XPost,
    XUser,
)

log = logging.getLogger(__name__)

SIMPLE_UPLOAD_MAX_BYTES = 5 * 1024 * 1024
MAX_CHUNK_BYTES = 5 * 1024 * 1024  # X's APPEND limit
POST_FIELDS = ["created_at", "author_id", "public_metrics", "referenced_tweets"]
PRIVATE_FIELDS = ["non_public_metrics"]
# The reconciler matches its post on media, expanded links and the replied-to post:
# X rewrites the text.
TIMELINE_FIELDS = [*POST_FIELDS, "attachments", "entities"]
_T = TypeVar("_T")
_Errors = (requests.RequestException, tweepy.TweepyException)


def _media_category(mime_type: str) -> str:
    if mime_type == "image/gif":
        return "tweet_gif"
    return "tweet_video" if mime_type.startswith("video/") else "tweet_image"


class TweepyXApi:
    """Thread-safe; one instance serves every account of the service."""

    def __init__(self, settings: XClientSettings) -> None:
        silence_secret_debug_logs()
        self._settings = settings
        self._transport = XTransport(
            settings.base_url, (settings.connect_timeout, settings.read_timeout)
        )
        self._lock = threading.Lock()
        self._clients: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._apis: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._user_ids: dict[str, str] = {}  # access token -> X user id
        self._app_client: Any = None

    @property
    def settings(self) -> XClientSettings:
        return self._settings

    # --- tweepy objects ------------------------------------------------------

    def _cached(
        self, cache: OrderedDict[tuple[str, str], _T], creds: XCredentials, make: Callable[[], _T]
    ) -> _T:
        key = (creds.access_token, creds.access_token_secret)
        with self._lock:
            found = cache.get(key)
            if found is None:
                found = cache[key] = make()
                while len(cache) > self._settings.client_cache_size:
                    cache.popitem(last=False)
            cache.move_to_end(key)
            return found

    def _new_client(self, creds: XCredentials | None) -> Any:
        s = self._settings
        client = tweepy.Client(
            bearer_token=s.bearer_token,
            consumer_key=s.consumer_key,
            consumer_secret=s.consumer_secret,
            access_token=creds.access_token if creds else None,
            access_token_secret=creds.access_token_secret if creds else None,
            return_type=requests.Response,  # keeps the rate-limit headers
        )
        mount(client.session, self._transport)
        return client

    def _user_client(self, creds: XCredentials) -> Any:
        return self._cached(self._clients, creds, lambda: self._new_client(creds))

    def _bearer_client(self) -> Any:
        if not self._settings.bearer_token:
            raise ValueError("reads without account credentials need a bearer token")
        with self._lock:
            if self._app_client is None:
                self._app_client = self._new_client(None)
            return self._app_client

    def _media_api(self, creds: XCredentials) -> Any:
        def make() -> Any:
            s = self._settings
            auth = tweepy.OAuth1UserHandler(
                s.consumer_key, s.consumer_secret, creds.access_token, creds.access_token_secret
            )
            api = tweepy.API(auth, timeout=(s.connect_timeout, s.read_timeout))
            mount(api.session, self._transport)
            return api

        return self._cached(self._apis, creds, make)

    @staticmethod
    def _call(call: Callable[[], Any]) -> requests.Response | Failure:
        try:
            response: requests.Response = call()
        except _Errors as exc:
            return from_exception(exc)
        return response

    # --- XApi -------------------------------------------------------------------

    def create_post(self, creds: XCredentials, post: NewPost) -> PublishOutcome:
        client = self._user_client(creds)
        try:
            response: requests.Response = client.create_tweet(
                text=post.text or None,
                media_ids=list(post.media_ids) or None,
                in_reply_to_tweet_id=post.in_reply_to,
            )
        except tweepy.HTTPException as exc:
            if is_duplicate(exc):
                return Duplicate(rate_limit_from(exc.response.headers))
            return self._logged(from_http_error(exc))
        except _Errors as exc:
            return self._logged(from_exception(exc))
        data = json_body(response).get("data")
        if not isinstance(data, dict) or "id" not in data:
            return UnknownOutcome(f"X answered {response.status_code} without a post id")
        return Published(str(data["id"]), rate_limit_from(response.headers))

    def delete_post(self, creds: XCredentials, x_post_id: str) -> DeleteOutcome:
        client = self._user_client(creds)
        try:
            response: requests.Response = client.delete_tweet(x_post_id)
        except tweepy.NotFound:
            return Deleted(existed=False)
        except _Errors as exc:
            return from_exception(exc)
        data = json_body(response).get("data") or {}
        return Deleted(existed=bool(data.get("deleted", True)))

    def lookup_posts(self, creds: XCredentials | None, ids: Sequence[str]) -> LookupOutcome:
        wanted = [str(i) for i in ids]
        if len(wanted) > MAX_LOOKUP_IDS:
            raise ValueError(f"at most {MAX_LOOKUP_IDS} ids per lookup, got {len(wanted)}")
        if not wanted:
            return PostsFound(())
        client = self._user_client(creds) if creds else self._bearer_client()
        fields = POST_FIELDS + (PRIVATE_FIELDS if creds else [])
        result = self._call(
            lambda: client.get_tweets(wanted, tweet_fields=fields, user_auth=creds is not None)
        )
        if not isinstance(result, requests.Response):
            return result
        body = json_body(result)
        posts = tuple(post_from_json(d) for d in body.get("data") or [] if isinstance(d, dict))
        return PostsFound(posts, missing_ids(body), rate_limit_from(result.headers))

    def me(self, creds: XCredentials) -> MeOutcome:
        client = self._user_client(creds)
        result = self._call(lambda: client.get_me(user_auth=True, user_fields=["public_metrics"]))
        if not isinstance(result, requests.Response):
            return result
        data = json_body(result).get("data")
        if not isinstance(data, dict) or "id" not in data:
            return UnknownOutcome("X answered /2/users/me without a user")
        user = XUser(
            str(data["id"]),
            str(data.get("username", "")),
            str(data.get("name", "")),
            user_metrics(data.get("public_metrics")),
        )
        with self._lock:
            self._user_ids[creds.access_token] = user.id
        return user

    def recent_posts(
        self,
        creds: XCredentials,
        since: datetime,
        *,
        user_id: str | None = None,
        since_id: str | None = None,
    ) -> TimelineOutcome:
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        if user_id is None:
            with self._lock:
                user_id = self._user_ids.get(creds.access_token)
        if user_id is None:
            me = self.me(creds)
            if not isinstance(me, XUser):
                return me
            user_id = me.id
        client = self._user_client(creds)
        posts: list[XPost] = []
        token: str | None = None
        result: requests.Response | Failure | None = None
        for _ in range(self._settings.timeline_max_pages):
            result = self._timeline_page(client, user_id, since, since_id, token)
            if not isinstance(result, requests.Response):
                return result
            body = json_body(result)
            posts.extend(
                post_from_json(d, detailed=True)
                for d in body.get("data") or []
                if isinstance(d, dict)
            )
            token = (body.get("meta") or {}).get("next_token")
            if not token:
                break
        info = rate_limit_from(result.headers) if isinstance(result, requests.Response) else None
        return Timeline(tuple(posts), info, complete=not token)

    def _timeline_page(
        self, client: Any, user_id: str, since: datetime, since_id: str | None, token: str | None
    ) -> requests.Response | Failure:
        return self._call(
            lambda: client.get_users_tweets(
                user_id,
                start_time=since.astimezone(UTC),
                since_id=since_id,
                max_results=100,
                pagination_token=token,
                tweet_fields=TIMELINE_FIELDS,
                expansions=["attachments.media_keys"],
                user_auth=True,
            )
        )

    def upload_media(
        self,
        creds: XCredentials,
        data: bytes,
        mime_type: str,
        *,
        chunked: bool | None = None,
        media_category: str | None = None,
        before_call: Callable[[], bool] | None = None,
    ) -> MediaOutcome:
        if chunked is None:
            chunked = (
                mime_type.startswith("video/")
                or mime_type == "image/gif"
                or len(data) > SIMPLE_UPLOAD_MAX_BYTES
            )
        category = media_category or _media_category(mime_type)
        api = self._media_api(creds)
        go_on = before_call or (lambda: True)
        try:
            if not chunked:
                if not go_on():
                    return Interrupted()
                media = api.simple_upload("media", file=io.BytesIO(data), media_category=category)
                return MediaUploaded(str(media.media_id_string))
            return self._chunked_upload(api, data, mime_type, category, go_on)
        except _Errors as exc:
            return from_exception(exc)

    def _chunked_upload(
        self, api: Any, data: bytes, mime_type: str, category: str, go_on: Callable[[], bool]
    ) -> MediaOutcome:
        """INIT, APPEND per chunk, FINALIZE, then STATUS until processed: each command
        only after `go_on` allowed it (tweepy's chunked_upload runs them unchecked)."""
        # tweepy's sizes: at most 1,000 segments, at most 5 MiB each.
        chunk = max(min(self._settings.media_chunk_bytes, MAX_CHUNK_BYTES), -(-len(data) // 1000))
        if not go_on():
            return Interrupted()
        media_id = api.chunked_upload_init(len(data), mime_type, media_category=category).media_id
        for index, offset in enumerate(range(0, len(data), chunk)):
            if not go_on():
                return Interrupted()
            api.chunked_upload_append(media_id, ("media", data[offset : offset + chunk]), index)
        if not go_on():
            return Interrupted()
        media = api.chunked_upload_finalize(media_id)
        return self._await_processing(api, media, go_on)

    def _await_processing(
        self, api: Any, media: Any, go_on: Callable[[], bool] = lambda: True
    ) -> MediaOutcome:
        """Poll STATUS as X asks (check_after_secs) until done, failed or out of time."""
        deadline = time.monotonic() + self._settings.media_processing_timeout
        cap = self._settings.media_poll_interval_cap
        info: dict[str, Any] | None = getattr(media, "processing_info", None)
        while info and info.get("state") in ("pending", "in_progress"):
            left = deadline - time.monotonic()
            if left <= 0:
                return UnknownOutcome("media processing did not finish in time")
            wait = float(info.get("check_after_secs", 1))
            time.sleep(min(wait, left) if cap is None else min(wait, cap, left))
            if not go_on():
                return Interrupted()
            media = api.get_media_upload_status(media.media_id_string)
            info = getattr(media, "processing_info", None)
        if info and info.get("state") == "failed":
            error = info.get("error") or {}
            return PermanentFailure(f"media processing failed: {error.get('message', '')}")
        return MediaUploaded(str(media.media_id_string))

    def close(self) -> None:
        with self._lock:
            for obj in [*self._clients.values(), *self._apis.values(), self._app_client]:
                if obj is not None:
                    obj.session.close()
            self._clients.clear()
            self._apis.clear()
            self._app_client = None

    @staticmethod
    def _logged(outcome: Failure) -> Failure:
        if isinstance(outcome, UnknownOutcome):
            log.warning("x create_post outcome unknown: %s", outcome.reason)
        return outcome
