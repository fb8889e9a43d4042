"""GET /2/users/me and GET /2/users/:id/tweets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from x_emulator import metrics, render, wire
from x_emulator.guard import authorize, read_bucket, spend

routes = web.RouteTableDef()

USER_FIELDS = frozenset(
    {
        "affiliation", "confirmed_email", "connection_status", "created_at", "description",
        "entities", "id", "is_identity_verified", "location", "most_recent_tweet_id", "name",
        "parody", "pinned_tweet_id", "profile_banner_url", "profile_image_url", "protected",
        "public_metrics", "receives_your_dm", "subscription", "subscription_type", "url",
        "username", "verified", "verified_followers_count", "verified_type", "withheld",
    }
)  # fmt: skip


@routes.get("/2/users/me")
async def me(request: web.Request) -> web.Response:
    ctx = authorize(request, user_only=True)
    if isinstance(ctx, web.Response):
        return ctx
    assert ctx.user is not None
    refused = spend(request, ctx, [read_bucket(ctx, "me", ctx.state.limits.me_per_window)])
    if refused is not None:
        return refused
    fields = render.parse_fields(request.query.get("user.fields"), "user.fields", USER_FIELDS)
    if isinstance(fields, str):
        return wire.invalid_request(fields)
    state, user, now = ctx.state, ctx.user, ctx.state.now()
    data: dict[str, Any] = {"id": user.id, "name": user.name, "username": user.username}
    if "created_at" in fields:
        data["created_at"] = render.iso(user.created_at)
    if "protected" in fields:
        data["protected"] = False
    if "verified" in fields:
        data["verified"] = False
    if "description" in fields:
        data["description"] = ""
    if "public_metrics" in fields:
        counts = metrics.user_counts_at(user.id, now - user.created_at)
        data["public_metrics"] = {
            "followers_count": counts.followers,
            "following_count": counts.following,
            "tweet_count": sum(
                1
                for p in state.posts.values()
                if p.author_id == user.id and not p.deleted and p.visible_at <= now
            ),
            "listed_count": counts.listed,
        }
    return web.json_response({"data": data})


def _timestamp(raw: str | None, name: str) -> float | str | None:
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return f"Invalid {name}: {raw}. Expected an RFC 3339 timestamp."


def _int_param(raw: str | None, name: str) -> int | str | None:
    if raw is None:
        return None
    if not raw.isdigit():
        return f"Invalid {name}: {raw}."
    return int(raw)


@routes.get("/2/users/{id}/tweets")
async def user_posts(request: web.Request) -> web.Response:
    ctx = authorize(request, user_only=False)
    if isinstance(ctx, web.Response):
        return ctx
    refused = spend(
        request, ctx, [read_bucket(ctx, "timeline", ctx.state.limits.timeline_per_window)]
    )
    if refused is not None:
        return refused
    q = request.query
    start = _timestamp(q.get("start_time"), "start_time")
    end = _timestamp(q.get("end_time"), "end_time")
    since_id = _int_param(q.get("since_id"), "since_id")
    until_id = _int_param(q.get("until_id"), "until_id")
    max_results = _int_param(q.get("max_results", "10"), "max_results")
    token = q.get("pagination_token")
    before: int | None = None
    if token is not None:
        try:
            before = int(token, 16)
        except ValueError:
            return wire.invalid_request(f"Invalid pagination_token: {token}.")
    for value in (start, end, since_id, until_id, max_results):
        if isinstance(value, str):
            return wire.invalid_request(value)
    assert isinstance(max_results, int)
    if not 5 <= max_results <= 100:
        return wire.invalid_request("max_results must be between 5 and 100.")
    query = render.parse_query(q)
    if isinstance(query, str):
        return wire.invalid_request(query)
    user_id = request.match_info["id"]
    state, now = ctx.state, ctx.state.now()
    if user_id not in state.users:
        return web.json_response({"errors": [wire.not_found_error("user", "id", user_id)]})
    matching = sorted(
        (
            p
            for p in state.posts.values()
            if p.author_id == user_id
            and not p.deleted
            and p.visible_at <= now  # X's timelines lag behind the store
            and (not isinstance(start, float) or p.created_at >= start)
            and (not isinstance(end, float) or p.created_at <= end)
            and (not isinstance(since_id, int) or int(p.id) > since_id)
            and (not isinstance(until_id, int) or int(p.id) < until_id)
            and (before is None or int(p.id) < before)
        ),
        key=lambda p: int(p.id),
        reverse=True,
    )
    page = matching[:max_results]
    data, errors, includes = render.render_posts(state, page, query, ctx.user, now)
    meta: dict[str, Any] = {"result_count": len(page)}
    if page:
        meta["newest_id"] = page[0].id
        meta["oldest_id"] = page[-1].id
    if len(matching) > len(page):
        meta["next_token"] = f"{int(page[-1].id):x}"
    body: dict[str, Any] = {"meta": meta}
    if data:
        body["data"] = data
    if includes:
        body["includes"] = includes
    if errors:
        body["errors"] = errors
    return web.json_response(body)
