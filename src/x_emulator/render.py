"""Posts as X API v2 renders them, honouring `tweet.fields`."""

from __future__ import annotations

import hashlib
import html
import re
from datetime import UTC, datetime
from typing import Any

from x_emulator import metrics, wire
from x_emulator.state import EmulatorState, StoredPost, User

PRIVATE_METRICS_MAX_AGE = 30 * 24 * 60 * 60  # X serves private metrics for 30 days

KNOWN_TWEET_FIELDS = frozenset(
    {
        "article", "attachments", "author_id", "card_uri", "community_id",
        "context_annotations", "conversation_id", "created_at", "display_text_range",
        "edit_controls", "edit_history_tweet_ids", "entities", "geo", "id",
        "in_reply_to_user_id", "lang", "media_metadata", "non_public_metrics", "note_tweet",
        "organic_metrics", "possibly_sensitive", "promoted_metrics", "public_metrics",
        "referenced_tweets", "reply_settings", "scopes", "source", "text", "withheld",
    }
)  # fmt: skip
PRIVATE_FIELDS = ("non_public_metrics", "organic_metrics")
KNOWN_EXPANSIONS = frozenset(
    {
        "article.cover_media", "article.media_entities", "attachments.media_keys",
        "attachments.media_source_tweet", "attachments.poll_ids", "author_id",
        "edit_history_tweet_ids", "entities.mentions.username", "geo.place_id",
        "in_reply_to_user_id", "entities.note.mentions.username", "referenced_tweets.id",
        "referenced_tweets.id.attachments.media_keys", "referenced_tweets.id.author_id",
    }
)  # fmt: skip
KNOWN_MEDIA_FIELDS = frozenset(
    {
        "alt_text", "duration_ms", "height", "media_key", "non_public_metrics",
        "organic_metrics", "preview_image_url", "promoted_metrics", "public_metrics",
        "type", "url", "variants", "width",
    }
)  # fmt: skip
_URL = re.compile(r"https?://\S+", re.IGNORECASE)
_TCO_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _tco(post_id: str, index: int) -> str:
    """A stable t.co link for the index-th link of a post."""
    digest = hashlib.sha256(f"{post_id}:{index}".encode()).digest()
    return "https://t.co/" + "".join(_TCO_ALPHABET[b % len(_TCO_ALPHABET)] for b in digest[:10])


def x_text(post: StoredPost) -> tuple[str, list[dict[str, Any]]]:
    """The text as X returns it, and its `entities.urls`: every URL a t.co link, a
    t.co link to the media appended, `&`, `<` and `>` HTML-escaped. The stored text
    stays raw (control API, duplicate check)."""
    text = ""
    urls: list[dict[str, Any]] = []

    def link(expanded: str, display: str, **extra: Any) -> str:
        short = _tco(post.id, len(urls))
        start = len(text)
        urls.append(
            {
                "start": start,
                "end": start + len(short),
                "url": short,
                "expanded_url": expanded,
                "display_url": display,
                **extra,
            }
        )
        return short

    position = 0
    for match in _URL.finditer(post.text):
        text += html.escape(post.text[position : match.start()], quote=False)
        text += link(match.group(), re.sub(r"^https?://", "", match.group())[:25])
        position = match.end()
    text += html.escape(post.text[position:], quote=False)
    if post.media_ids:
        text += " " if text else ""
        kind = "photo" if post.media_keys[0].startswith("3_") else "video"
        page = f"https://x.com/i/status/{post.id}/{kind}/1"
        text += link(page, f"pic.x.com/{post.id[-10:]}", media_key=post.media_keys[0])
    return text, urls


def parse_fields(
    raw: str | None, name: str = "tweet.fields", known: frozenset[str] = KNOWN_TWEET_FIELDS
) -> set[str] | str:
    """The requested fields, or the first unknown one as an error message."""
    if not raw:
        return set()
    requested = {f.strip() for f in raw.split(",") if f.strip()}
    unknown = sorted(requested - known)
    if unknown:
        return f"The `{name}` query parameter value [{unknown[0]}] is not one of " + str(
            sorted(known)
        )
    return requested


def parse_query(query: Any) -> tuple[set[str], set[str], set[str]] | str:
    """tweet.fields, expansions and media.fields of a request, or an error message."""
    parsed = (
        parse_fields(query.get("tweet.fields")),
        parse_fields(query.get("expansions"), "expansions", KNOWN_EXPANSIONS),
        parse_fields(query.get("media.fields"), "media.fields", KNOWN_MEDIA_FIELDS),
    )
    for value in parsed:
        if isinstance(value, str):
            return value
    fields, expansions, media_fields = parsed
    assert isinstance(fields, set) and isinstance(expansions, set)
    assert isinstance(media_fields, set)
    return fields, expansions, media_fields


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{int(ts * 1000) % 1000:03d}Z"
    )


def _field_error(post_id: str, field: str) -> dict[str, Any]:
    return {
        "value": post_id,
        "detail": f"Sorry, you are not authorized to access '{field}' on the Tweet "
        f"with ids: {post_id}.",
        "title": "Field Authorization Error",
        "resource_type": "tweet",
        "parameter": field,
        "resource_id": post_id,
        "section": "data",
        "field": field,
        "type": wire.PROBLEMS + "not-authorized-for-field",
    }


def render_post(
    post: StoredPost,
    fields: set[str],
    viewer: User | None,
    now: float,
    parent_author: str | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The post's JSON and any per-field authorization errors."""
    text, urls = x_text(post)
    data: dict[str, Any] = {"id": post.id, "text": text, "edit_history_tweet_ids": [post.id]}
    errors: list[dict[str, Any]] = []
    if "entities" in fields and urls:
        data["entities"] = {"urls": urls}
    if "created_at" in fields:
        data["created_at"] = iso(post.created_at)
    if "author_id" in fields:
        data["author_id"] = post.author_id
    if "attachments" in fields and post.media_ids:
        data["attachments"] = {"media_keys": list(post.media_keys)}
    if post.in_reply_to is not None:
        if "referenced_tweets" in fields:
            data["referenced_tweets"] = [{"type": "replied_to", "id": post.in_reply_to}]
        if "in_reply_to_user_id" in fields and parent_author:
            data["in_reply_to_user_id"] = parent_author
    age = now - post.created_at
    c = metrics.counts_at(post.id, age)
    if "public_metrics" in fields:
        data["public_metrics"] = {
            "retweet_count": c.retweets,
            "reply_count": c.replies,
            "like_count": c.likes,
            "quote_count": c.quotes,
            "bookmark_count": c.bookmarks,
            "impression_count": c.impressions,
        }
    private_ok = viewer is not None and viewer.id == post.author_id
    private_ok = private_ok and age <= PRIVATE_METRICS_MAX_AGE
    for field in PRIVATE_FIELDS:
        if field not in fields:
            continue
        if not private_ok:
            errors.append(_field_error(post.id, field))
        elif field == "non_public_metrics":
            data[field] = {
                "impression_count": c.impressions,
                "url_link_clicks": c.url_link_clicks,
                "user_profile_clicks": c.user_profile_clicks,
                "engagements": c.engagements,
            }
        else:
            data[field] = {
                "impression_count": c.impressions,
                "like_count": c.likes,
                "reply_count": c.replies,
                "retweet_count": c.retweets,
                "url_link_clicks": c.url_link_clicks,
                "user_profile_clicks": c.user_profile_clicks,
            }
    return data, errors


def _media_object(state: EmulatorState, key: str, fields: set[str]) -> dict[str, Any]:
    """X's media object: media_key and type always, other fields when asked for."""
    media = state.media.get(key.partition("_")[2])
    kind = media.kind if media else "photo"
    body: dict[str, Any] = {"media_key": key, "type": kind}
    if media is not None and media.width and {"width", "height"} & fields:
        body["width"], body["height"] = media.width, media.height
    return body


def render_posts(
    state: EmulatorState,
    posts: list[StoredPost],
    query: tuple[set[str], set[str], set[str]],
    viewer: User | None,
    now: float,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """The `data`, `errors` and `includes` of an answer listing these posts."""
    fields, expansions, media_fields = query
    data: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for post in posts:
        parent = state.posts.get(post.in_reply_to) if post.in_reply_to else None
        rendered, field_errors = render_post(
            post, fields, viewer, now, parent.author_id if parent else None
        )
        data.append(rendered)
        errors.extend(field_errors)
    includes: dict[str, Any] = {}
    if "attachments.media_keys" in expansions:
        keys = list(dict.fromkeys(k for p in posts for k in p.media_keys))
        if keys:
            includes["media"] = [_media_object(state, k, media_fields) for k in keys]
    if "referenced_tweets.id" in expansions:
        parents = [state.posts[p.in_reply_to] for p in posts if p.in_reply_to in state.posts]
        visible = list({p.id: p for p in parents if not p.deleted}.values())
        if visible:
            includes["tweets"] = [render_post(p, fields, viewer, now)[0] for p in visible]
    if "author_id" in expansions and posts:
        authors = dict.fromkeys(p.author_id for p in posts)
        includes["users"] = [
            {"id": u.id, "name": u.name, "username": u.username}
            for u in (state.users.get(a) for a in authors)
            if u is not None
        ]
    return data, errors, includes
