"""v1.1 media upload: simple multipart, and chunked INIT/APPEND/FINALIZE/STATUS."""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from x_emulator import images
from x_emulator.guard import Bucket, Context, authorize, spend
from x_emulator.state import StoredMedia

SIMPLE_MAX_BYTES = 5 * 1024 * 1024
CHUNK_MAX_BYTES = 5 * 1024 * 1024
TOTAL_MAX_BYTES = 512 * 1024 * 1024
MAX_SEGMENT_INDEX = 999
EXPIRES_AFTER_SECS = 86400
PATH = "/1.1/media/upload.json"

routes = web.RouteTableDef()


def _error(message: str, code: int = 324, status: int = 400) -> web.Response:
    return web.json_response({"errors": [{"code": code, "message": message}]}, status=status)


def _needs_processing(media_type: str, category: str | None) -> bool:
    return (
        media_type.startswith("video/")
        or media_type == "image/gif"
        or (category in ("tweet_video", "tweet_gif", "amplify_video"))
    )


def _describe(media: StoredMedia, now: float) -> dict[str, Any]:
    body: dict[str, Any] = {
        "media_id": int(media.id),
        "media_id_string": media.id,
        "media_key": media.key,
        "size": media.total_bytes,
        "expires_after_secs": EXPIRES_AFTER_SECS,
    }
    if media.finalized_at is not None:
        if media.kind == "photo":
            body["image"] = {"image_type": media.media_type, "w": media.width, "h": media.height}
        else:  # X converts animated GIFs to video
            body["video"] = {"video_type": "video/mp4"}
    ready = media.ready_at()
    if ready is None or media.processing_seconds <= 0:
        return body
    elapsed = now - (media.finalized_at or now)
    if now >= ready:
        body["processing_info"] = {"state": "succeeded", "progress_percent": 100}
    else:
        progress = int(100 * elapsed / media.processing_seconds)
        body["processing_info"] = {
            "state": "pending" if progress < 25 else "in_progress",
            "check_after_secs": max(1, math.ceil(ready - now)),
            "progress_percent": progress,
        }
    return body


def _media_bytes(form: Mapping[str, Any]) -> bytes | None:
    field = form.get("media")
    if isinstance(field, web.FileField):
        data: bytes = field.file.read()
        return data
    if isinstance(field, str | bytes):
        return field.encode() if isinstance(field, str) else field
    raw = form.get("media_data")
    if isinstance(raw, str):
        try:
            return base64.b64decode(raw, validate=True)
        except binascii.Error:
            return None
    return None


def _authorized(request: web.Request) -> Context | web.Response:
    ctx = authorize(request, user_only=True)
    if isinstance(ctx, web.Response):
        return ctx
    limits = ctx.state.limits
    bucket = Bucket("media", "x-rate-limit", limits.media_per_window, limits.read_window_seconds)
    return spend(request, ctx, [bucket]) or ctx


@routes.post(PATH)
async def upload(request: web.Request) -> web.Response:
    ctx = _authorized(request)
    if isinstance(ctx, web.Response):
        return ctx
    assert ctx.user is not None
    form = await request.post()
    command = str(form.get("command", "")).upper()
    ctx.state.counters[f"POST {PATH} command={command or 'SIMPLE'}"] += 1
    state, now, owner = ctx.state, ctx.state.now(), ctx.user.id
    if not command:
        data = _media_bytes(form)
        if not data:
            return _error("media parameter is missing.", code=38)
        if len(data) > SIMPLE_MAX_BYTES:
            return _error(f"File size exceeds {SIMPLE_MAX_BYTES} bytes.")
        # Not decoded: bytes of no known image format count as a JPEG of unknown size.
        info = images.sniff(data) or images.ImageInfo("image/jpeg")
        media = StoredMedia(state.new_media_id(), owner, info.image_type, len(data), chunked=False)
        media.width, media.height = info.width, info.height
        media.received[0] = len(data)
        media.finalized_at = now
        state.media[media.id] = media
        return web.json_response(_describe(media, now))
    if command == "INIT":
        total, media_type = str(form.get("total_bytes", "")), str(form.get("media_type", ""))
        if not total.isdigit() or not 0 < int(total) <= TOTAL_MAX_BYTES or not media_type:
            return _error("INIT needs total_bytes (1 to 512 MB) and media_type.", code=38)
        category = form.get("media_category")
        media = StoredMedia(state.new_media_id(), owner, media_type, int(total), chunked=True)
        if _needs_processing(media_type, str(category) if category else None):
            media.processing_seconds = state.limits.media_processing_seconds
        state.media[media.id] = media
        return web.json_response(_describe(media, now), status=202)
    media_found = state.media.get(str(form.get("media_id", "")))
    if media_found is None or media_found.owner_id != owner:
        return _error("Invalid or expired media_id.")
    if command == "APPEND":
        index = str(form.get("segment_index", ""))
        chunk = _media_bytes(form)
        if not index.isdigit() or int(index) > MAX_SEGMENT_INDEX or chunk is None:
            return _error("APPEND needs segment_index (0-999) and media.", code=38)
        if len(chunk) > CHUNK_MAX_BYTES or media_found.finalized_at is not None:
            return _error("Invalid APPEND for this media_id.")
        media_found.received[int(index)] = len(chunk)
        if int(index) == 0 and media_found.kind == "photo":
            head = images.sniff(chunk[: images.HEAD_BYTES])
            media_found.width, media_found.height = (head.width, head.height) if head else (0, 0)
        return web.Response(status=204)
    if command == "FINALIZE":
        if sum(media_found.received.values()) != media_found.total_bytes:
            return _error("Segments do not add up to provided total file size.")
        if media_found.finalized_at is None:
            media_found.finalized_at = now
        return web.json_response(_describe(media_found, now), status=201)
    return _error(f"Unknown command: {command}.", code=38)


@routes.get(PATH)
async def status(request: web.Request) -> web.Response:
    ctx = _authorized(request)
    if isinstance(ctx, web.Response):
        return ctx
    assert ctx.user is not None
    ctx.state.counters[f"GET {PATH} command=STATUS"] += 1
    if request.query.get("command", "").upper() != "STATUS":
        return _error("Only command=STATUS is served here.", code=38)
    media = ctx.state.media.get(request.query.get("media_id", ""))
    if media is None or media.owner_id != ctx.user.id or media.finalized_at is None:
        return _error("Invalid or expired media_id.")
    return web.json_response(_describe(media, ctx.state.now()))
