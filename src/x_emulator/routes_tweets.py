"""POST /2/tweets, DELETE /2/tweets/:id and GET /2/tweets."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from x_emulator import render, wire
from x_emulator.guard import Bucket, Context, authorize, read_bucket, spend
from x_emulator.state import StoredPost

MAX_TEXT_WEIGHT = 280
MAX_MEDIA = 4
MAX_LOOKUP_IDS = 100

routes = web.RouteTableDef()


def _post_buckets(ctx: Context) -> list[Bucket]:
    limits = ctx.state.limits
    return [
        Bucket("create", "x-rate-limit", limits.user_posts_per_window, limits.post_window_seconds),
        Bucket("create-day", "x-user-limit-24hour", limits.user_posts_per_day, limits.day_seconds),
        Bucket(
            "create-day",
            "x-app-limit-24hour",
            limits.app_posts_per_day,
            limits.day_seconds,
            per_app=True,
        ),
    ]


def _parse_new_post(body: Any) -> tuple[str, list[str], str | None] | str:
    """(text, media ids, reply target) or an error message."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    text = body.get("text", "")
    media = body.get("media") or {}
    reply = body.get("reply") or {}
    if not isinstance(text, str) or not isinstance(media, dict) or not isinstance(reply, dict):
        return "Invalid field types in the request body."
    media_ids = media.get("media_ids", [])
    if not isinstance(media_ids, list) or not all(isinstance(m, str) for m in media_ids):
        return "media.media_ids must be an array of strings."
    if len(media_ids) > MAX_MEDIA:
        return f"media.media_ids allows at most {MAX_MEDIA} items."
    if not text and not media_ids:
        return "Either text or media.media_ids must be present."
    if wire.weighted_length(text) > MAX_TEXT_WEIGHT:
        return "text is longer than 280 weighted characters."
    target = reply.get("in_reply_to_tweet_id")
    if target is not None and not isinstance(target, str):
        return "reply.in_reply_to_tweet_id must be a string."
    return text, media_ids, target


@routes.post("/2/tweets")
async def create_post(request: web.Request) -> web.Response:
    ctx = authorize(request, user_only=True)
    if isinstance(ctx, web.Response):
        return ctx
    assert ctx.user is not None
    refused = spend(request, ctx, _post_buckets(ctx))
    if refused is not None:
        return refused
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return wire.invalid_request("The request body is not valid JSON.")
    parsed = _parse_new_post(body)
    if isinstance(parsed, str):
        return wire.invalid_request(parsed)
    text, media_ids, target = parsed
    state, now = ctx.state, ctx.state.now()
    for media_id in media_ids:
        media = state.media.get(media_id)
        ready = media.ready_at() if media else None
        if media is None or media.owner_id != ctx.user.id or ready is None or ready > now:
            return wire.invalid_request("Your media IDs are invalid.")
    if target is not None:
        parent = state.posts.get(target)
        if parent is None or parent.deleted:
            return wire.forbidden(
                "You attempted to reply to a Tweet that is deleted or not visible to you."
            )
    if state.is_duplicate(ctx.user.id, text, now):
        # Counted so tests can prove no second create-post was ever attempted.
        state.counters["POST /2/tweets duplicate"] += 1
        return wire.forbidden(wire.DUPLICATE_DETAIL)
    post = state.store_post(ctx.user.id, text, now, tuple(media_ids), target)
    data = {"id": post.id, "text": render.x_text(post)[0], "edit_history_tweet_ids": [post.id]}
    return web.json_response({"data": data}, status=201)


@routes.delete("/2/tweets/{id}")
async def delete_post(request: web.Request) -> web.Response:
    ctx = authorize(request, user_only=True)
    if isinstance(ctx, web.Response):
        return ctx
    assert ctx.user is not None
    limits = ctx.state.limits
    bucket = Bucket("delete", "x-rate-limit", limits.delete_per_window, limits.post_window_seconds)
    refused = spend(request, ctx, [bucket])
    if refused is not None:
        return refused
    post_id = request.match_info["id"]
    post = ctx.state.posts.get(post_id)
    if post is None or post.deleted:
        body = wire.not_found_error("tweet", "id", post_id)
        return web.json_response({"errors": [body]}, status=404)
    if post.author_id != ctx.user.id:
        return wire.forbidden("You are not allowed to delete this Tweet.")
    post.deleted = True
    return web.json_response({"data": {"deleted": True}})


def _answer(
    data: list[dict[str, Any]], errors: list[dict[str, Any]], includes: dict[str, Any]
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if data:
        body["data"] = data
    if includes:
        body["includes"] = includes
    if errors:
        body["errors"] = errors
    return body


@routes.get("/2/tweets")
async def lookup_posts(request: web.Request) -> web.Response:
    ctx = authorize(request, user_only=False)
    if isinstance(ctx, web.Response):
        return ctx
    refused = spend(request, ctx, [read_bucket(ctx, "lookup", ctx.state.limits.lookup_per_window)])
    if refused is not None:
        return refused
    ids = [i.strip() for i in request.query.get("ids", "").split(",") if i.strip()]
    if not ids or len(ids) > MAX_LOOKUP_IDS or not all(i.isdigit() for i in ids):
        return wire.invalid_request("The `ids` query parameter must hold 1 to 100 numeric ids.")
    query = render.parse_query(request.query)
    if isinstance(query, str):
        return wire.invalid_request(query)
    state, now = ctx.state, ctx.state.now()
    found: list[StoredPost] = []
    missing: list[dict[str, Any]] = []
    for post_id in ids:
        post = state.posts.get(post_id)
        if post is None or post.deleted:
            missing.append(wire.not_found_error("tweet", "ids", post_id))
        else:
            found.append(post)
    data, errors, includes = render.render_posts(state, found, query, ctx.user, now)
    return web.json_response(_answer(data, missing + errors, includes))


@routes.get("/2/tweets/{id}")
async def lookup_post(request: web.Request) -> web.Response:
    """One post by id: `data` is an object; an unknown id is a 200 with `errors`."""
    ctx = authorize(request, user_only=False)
    if isinstance(ctx, web.Response):
        return ctx
    refused = spend(request, ctx, [read_bucket(ctx, "tweet", ctx.state.limits.tweet_per_window)])
    if refused is not None:
        return refused
    post_id = request.match_info["id"]
    if not post_id.isdigit():
        return wire.invalid_request(f"The `id` query parameter value [{post_id}] is not valid.")
    query = render.parse_query(request.query)
    if isinstance(query, str):
        return wire.invalid_request(query)
    state = ctx.state
    post = state.posts.get(post_id)
    if post is None or post.deleted:
        return web.json_response({"errors": [wire.not_found_error("tweet", "id", post_id)]})
    data, errors, includes = render.render_posts(state, [post], query, ctx.user, state.now())
    body = _answer(data, errors, includes)
    body["data"] = data[0]
    return web.json_response(body)
