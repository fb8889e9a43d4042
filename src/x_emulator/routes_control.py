"""The control API under /_emulator/ that tests and operators drive."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from x_emulator.faults import Fault
from x_emulator.guard import state_of
from x_emulator.state import User

routes = web.RouteTableDef()


def _user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "name": user.name,
        "suspended": user.suspended,
    }


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    body = await request.json()
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return body


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


@routes.post("/_emulator/reset")
async def reset(request: web.Request) -> web.Response:
    state_of(request).reset()
    return web.json_response({"reset": True})


@routes.get("/_emulator/limits")
async def get_limits(request: web.Request) -> web.Response:
    return web.json_response(state_of(request).limits.to_json())


@routes.put("/_emulator/limits")
async def set_limits(request: web.Request) -> web.Response:
    limits = state_of(request).limits
    try:
        limits.update(await _body(request))
    except (ValueError, TypeError) as exc:
        return _bad(str(exc))
    return web.json_response(limits.to_json())


@routes.get("/_emulator/behaviour")
async def get_behaviour(request: web.Request) -> web.Response:
    return web.json_response(state_of(request).behaviour.to_json())


@routes.put("/_emulator/behaviour")
async def set_behaviour(request: web.Request) -> web.Response:
    """Change timeline lag or the duplicate window; posts already stored keep their lag."""
    state = state_of(request)
    try:
        state.behaviour = state.behaviour.updated(await _body(request))
    except (ValueError, TypeError) as exc:
        return _bad(str(exc))
    return web.json_response(state.behaviour.to_json())


@routes.get("/_emulator/users")
async def list_users(request: web.Request) -> web.Response:
    return web.json_response([_user_json(u) for u in state_of(request).users.values()])


@routes.post("/_emulator/users")
async def register_user(request: web.Request) -> web.Response:
    body = await _body(request)
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        return _bad("access_token is required")
    user_id, username = body.get("user_id"), body.get("username")
    user = state_of(request).register_user(
        token,
        str(user_id) if user_id is not None else None,
        str(username) if username is not None else None,
    )
    return web.json_response(_user_json(user), status=201)


async def _set_suspended(request: web.Request, suspended: bool) -> web.Response:
    user = state_of(request).users.get(request.match_info["id"])
    if user is None:
        return web.json_response({"error": "unknown user"}, status=404)
    user.suspended = suspended
    return web.json_response(_user_json(user))


@routes.post("/_emulator/users/{id}/suspend")
async def suspend(request: web.Request) -> web.Response:
    return await _set_suspended(request, True)


@routes.post("/_emulator/users/{id}/unsuspend")
async def unsuspend(request: web.Request) -> web.Response:
    return await _set_suspended(request, False)


@routes.post("/_emulator/tokens/revoke")
async def revoke(request: web.Request) -> web.Response:
    token = (await _body(request)).get("access_token")
    if not isinstance(token, str) or not token:
        return _bad("access_token is required")
    state_of(request).revoked_tokens.add(token)
    return web.json_response({"revoked": True})


@routes.post("/_emulator/tokens/restore")
async def restore(request: web.Request) -> web.Response:
    token = (await _body(request)).get("access_token")
    state_of(request).revoked_tokens.discard(str(token))
    return web.json_response({"revoked": False})


@routes.get("/_emulator/faults")
async def list_faults(request: web.Request) -> web.Response:
    return web.json_response([f.to_json() for f in state_of(request).faults.pending()])


@routes.post("/_emulator/faults")
async def add_fault(request: web.Request) -> web.Response:
    try:
        fault = Fault.from_json(await _body(request))
    except (KeyError, ValueError, TypeError) as exc:
        return _bad(f"invalid fault: {exc}")
    state_of(request).faults.add(fault)
    return web.json_response(fault.to_json(), status=201)


@routes.delete("/_emulator/faults")
async def clear_faults(request: web.Request) -> web.Response:
    state_of(request).faults.clear()
    return web.json_response({"cleared": True})


@routes.get("/_emulator/posts")
async def list_posts(request: web.Request) -> web.Response:
    q = request.query
    include_deleted = q.get("include_deleted", "false").lower() == "true"
    posts = [
        p.to_json()
        for p in state_of(request).posts.values()
        if (include_deleted or not p.deleted)
        and ("text" not in q or p.text == q["text"])
        and ("author_id" not in q or p.author_id == q["author_id"])
    ]
    return web.json_response(posts)


@routes.post("/_emulator/posts")
async def seed_post(request: web.Request) -> web.Response:
    """Store a post as if the user had published it elsewhere."""
    body = await _body(request)
    state = state_of(request)
    author = state.users.get(str(body.get("author_id", "")))
    if author is None:
        return _bad("author_id must name a known user")
    age = float(body.get("age_seconds", 0.0))
    post = state.store_post(author.id, str(body.get("text", "")), state.now() - age)
    return web.json_response(post.to_json(), status=201)


@routes.get("/_emulator/counters")
async def counters(request: web.Request) -> web.Response:
    return web.json_response(dict(state_of(request).counters))


@routes.get("/_emulator/requests")
async def received(request: web.Request) -> web.Response:
    """The newest X requests (method, path, traceparent), oldest first."""
    return web.json_response(list(state_of(request).received))


@routes.get("/_emulator/clock")
async def get_clock(request: web.Request) -> web.Response:
    state = state_of(request)
    return web.json_response({"now": state.now(), "offset_seconds": state.clock_offset})


@routes.post("/_emulator/clock")
async def advance_clock(request: web.Request) -> web.Response:
    """Move the emulator's clock forward (metrics age, rate-limit windows refill)."""
    state = state_of(request)
    try:
        seconds = float((await _body(request)).get("advance_seconds", 0.0))
    except (TypeError, ValueError):
        return _bad("advance_seconds must be a number")
    if seconds < 0:
        return _bad("the clock only moves forward")
    state.clock_offset += seconds
    return web.json_response({"now": state.now(), "offset_seconds": state.clock_offset})
