"""X Account Activity webhooks: the CRC challenge and signed event deliveries.

X signs with the app's consumer secret, so these calls need no token. The
handled subset (docs/analytics.md):

- favorite_events: a like of one of our posts (likes + 1)
- tweet_create_events: a repost (reposts + 1), quote (quotes + 1) or reply
  (replies + 1) of one of our posts
- tweet_delete_events: one of our posts deleted on X (marked deleted)

Counts move at once as a new snapshot (the next poll replaces them with X's
own figures). Each event is applied once: its id goes into webhook_events.

The CRC answer is an HMAC of the token under the same secret that signs
deliveries, so only tokens shaped like X's are answered: a JSON body cannot
match the shape, and the CRC endpoint can never be asked to sign a delivery.
Without a consumer secret both calls are refused (webhooks off).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from post_management.domain.analytics import Counts, Snapshot
from post_management.domain.errors import FailedPrecondition, InvalidArgument, Unauthenticated
from post_management.domain.reasons import Reason
from post_management.ports.analytics import SOURCE_WEBHOOK, AsyncCache
from post_management.ports.async_unit_of_work import AsyncUnitOfWorkFactory
from post_management.ports.support import Clock
from post_management.services.analytics.analytics import cache_keys, store_snapshot_awaited

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-twitter-webhooks-signature"
MAX_EVENTS = 1000  # per delivery; X batches far fewer
# X's crc_token is a short base64 (or base64url) string; no JSON document fits.
CRC_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]+")  # at most MAX_CRC_TOKEN_LENGTH, checked first
MAX_CRC_TOKEN_LENGTH = 128


def signature(secret: str, payload: bytes) -> str:
    """X's form: "sha256=" + base64(HMAC-SHA256(secret, payload))."""
    digest = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


@dataclass(frozen=True)
class DeliveryResult:
    applied: int = 0
    duplicates: int = 0
    ignored: int = 0


@dataclass(frozen=True)
class _Event:
    event_id: str  # "<kind>:<X id>", unique across kinds
    kind: str
    x_post_id: str  # the post of ours it is about
    metric: str  # the count it moves; "" for a deletion


def _str(value: Any) -> str:
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_events(body: dict[str, Any]) -> tuple[list[_Event], int]:
    """The handled events of a delivery, and how many entries were not handled."""
    found: list[_Event] = []
    ignored = 0
    for event in body.get("favorite_events") or []:
        event = _dict(event)
        target = _str(_dict(event.get("favorited_status")).get("id_str"))
        if _str(event.get("id")) and target:
            found.append(_Event(f"favorite:{event['id']}", "favorite", target, "likes"))
        else:
            ignored += 1
    for tweet in body.get("tweet_create_events") or []:
        tweet = _dict(tweet)
        tweet_id = _str(tweet.get("id_str"))
        reposted = _str(_dict(tweet.get("retweeted_status")).get("id_str"))
        quoted = _str(_dict(tweet.get("quoted_status")).get("id_str")) or _str(
            tweet.get("quoted_status_id_str")
        )
        replied = _str(tweet.get("in_reply_to_status_id_str"))
        if not tweet_id:
            ignored += 1
        elif reposted:
            found.append(_Event(f"tweet:{tweet_id}", "repost", reposted, "reposts"))
        elif quoted:
            found.append(_Event(f"tweet:{tweet_id}", "quote", quoted, "quotes"))
        elif replied:
            found.append(_Event(f"tweet:{tweet_id}", "reply", replied, "replies"))
        else:
            ignored += 1
    for deletion in body.get("tweet_delete_events") or []:
        status = _dict(_dict(deletion).get("status"))
        target = _str(status.get("id"))
        if target:
            found.append(_Event(f"delete:{target}", "delete", target, ""))
        else:
            ignored += 1
    return found, ignored


class XWebhooks:
    """Deliveries are applied on the asynchronous unit of work and the posts' cached
    answers dropped through the awaited cache, on the serving loop."""

    def __init__(
        self,
        uow: AsyncUnitOfWorkFactory,
        clock: Clock,
        cache: AsyncCache,
        consumer_secret: str | None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._cache = cache
        self._secret = consumer_secret

    @property
    def enabled(self) -> bool:
        return self._secret is not None

    def _key(self) -> str:
        if self._secret is None:
            raise FailedPrecondition(
                "X webhooks are off: TWITTER_CONSUMER_SECRET is not set",
                reason=Reason.WEBHOOKS_DISABLED,
            )
        return self._secret

    def crc_response(self, crc_token: str) -> str:
        secret = self._key()
        if not crc_token:
            raise InvalidArgument.for_field(
                "crc_token", "is required", reason=Reason.CRC_TOKEN_MISSING
            )
        # Length first: the pattern never runs over a long input.
        if len(crc_token) > MAX_CRC_TOKEN_LENGTH or not CRC_TOKEN.fullmatch(crc_token):
            raise InvalidArgument.for_field(
                "crc_token",
                f"must be 1-{MAX_CRC_TOKEN_LENGTH} characters of A-Z a-z 0-9 + / = _ -",
                reason=Reason.CRC_TOKEN_INVALID,
            )
        return signature(secret, crc_token.encode())

    def verify(self, body: bytes, given: str) -> None:
        expected = signature(self._key(), body).encode()
        # Constant time: a timing difference would leak the signature byte by byte.
        if not given or not hmac.compare_digest(expected, given.strip().encode()):
            raise Unauthenticated(
                "the webhook signature does not match the body",
                reason=Reason.WEBHOOK_SIGNATURE_INVALID,
            )

    async def receive(self, body: bytes, given_signature: str) -> DeliveryResult:
        self.verify(body, given_signature)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            raise InvalidArgument.for_field(
                "body", "is not a JSON object", reason=Reason.BAD_WEBHOOK
            )
        found, ignored = parse_events(payload)
        if len(found) > MAX_EVENTS:
            raise InvalidArgument.for_field("body", f"carries over {MAX_EVENTS} events")
        return await self._apply(found, ignored)

    async def _apply(self, found: list[_Event], ignored: int) -> DeliveryResult:
        now = self._clock.now()
        applied = duplicates = 0
        deltas: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        deleted: set[str] = set()
        touched = []
        async with self._uow() as uow:
            ours = await uow.analytics.published_by_x_id(sorted({e.x_post_id for e in found}))
            # Every delivery takes its locks in one order (event ids, then post ids), so
            # concurrent deliveries touching the same rows wait for each other and
            # never deadlock.
            for event in sorted(found, key=lambda e: e.event_id):
                if event.x_post_id not in ours:
                    ignored += 1
                    continue
                if not await uow.analytics.record_webhook_event(event.event_id, event.kind, now):
                    duplicates += 1
                    continue
                applied += 1
                if event.metric:
                    deltas[event.x_post_id][event.metric] += 1
                else:
                    deleted.add(event.x_post_id)
            # The rows' locks order concurrent deliveries for one post: no lost increment.
            for post_id in sorted({ours[x_id].post_id for x_id in (*deleted, *deltas)}):
                await uow.posts.get(post_id, for_update=True)
            for x_id in deleted:
                await uow.analytics.mark_deleted(ours[x_id].post_id, now)
                touched.append(ours[x_id].post_id)
            # Timed once the locks are held, and never before the snapshot it adds to: a
            # delivery that waited for another's lock must not file its larger counts
            # under an earlier time than the other's, or the other's stays the latest.
            locked_at = self._clock.now()
            for x_id, change in deltas.items():
                ref = ours[x_id]
                latest = await uow.analytics.latest(ref.post_id)
                counts = (latest.counts if latest else Counts()).plus(**change)
                private = latest.private_known if latest else False
                at = max(locked_at, latest.collected_at) if latest else locked_at
                snapshot = Snapshot(at, counts, private_known=private)
                await store_snapshot_awaited(uow, ref, snapshot, SOURCE_WEBHOOK)
                touched.append(ref.post_id)
            await uow.commit()
        keys = [key for post_id in touched for key in cache_keys(post_id)]
        if keys:
            await self._cache.delete(*keys)
        return DeliveryResult(applied, duplicates, ignored)
