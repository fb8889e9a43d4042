"""PostService over gRPC: map, await the use case, map back.

The post commands, UploadMedia and GetPost are awaited on the loop itself (the
asynchronous unit of work, services/posts/queries.py): no thread hop but UploadMedia's
hashing of the file."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import grpc
from google.protobuf import empty_pb2
from xmp.posts.v1 import media_pb2, post_pb2, post_service_pb2, post_service_pb2_grpc

from post_management.domain.content import MAX_MEDIA
from post_management.domain.errors import InvalidArgument
from post_management.domain.limits import ensure_at_most
from post_management.domain.media import MAX_MEDIA_PER_POST
from post_management.domain.post import NO_CAMPAIGN, Priority
from post_management.domain.reasons import Reason
from post_management.domain.threads import MAX_FOLLOW_UPS
from post_management.entrypoints.grpc.edge import current_principal
from post_management.entrypoints.grpc.mapping import (
    checked_user_id,
    mask_paths,
    media_to_proto,
    parse_uuid,
    parse_uuids,
    post_state_from_proto,
    post_to_proto,
    priority_from_proto,
    required_user_id,
)
from post_management.services.posts.media import MediaService, NewMedia
from post_management.services.posts.posts import NewPost, PostPatch, PostQuery, PostService
from post_management.services.posts.queries import PostQueries

Context = grpc.aio.ServicerContext[Any, Any]
WRITABLE = frozenset(
    {
        "text",
        "media_ids",
        "reply_to_x_post_id",
        "account_id",
        "priority",
        "attachment_ids",
        "thread",
        "campaign_id",
    }
)


# The reason of every content violation (services/posts/posts.py).
CONTENT = Reason.INVALID_ARGUMENT


def _check_list_sizes(message: post_pb2.Post) -> None:
    """Every list of a post by its length, before any element is parsed; the reasons
    are those of the content and media checks the lists would otherwise fail."""
    ensure_at_most(message.media_ids, MAX_MEDIA, "post.media_ids", "media ids", CONTENT)
    ensure_at_most(
        message.attachment_ids,
        MAX_MEDIA_PER_POST,
        "post.attachment_ids",
        "attachments",
        Reason.INVALID_MEDIA,
    )
    ensure_at_most(message.thread, MAX_FOLLOW_UPS, "post.thread", "follow-up segments", CONTENT)


class PostServicer(post_service_pb2_grpc.PostServiceServicer):
    def __init__(self, posts: PostService, media: MediaService, queries: PostQueries) -> None:
        self._posts = posts
        self._media = media
        self._queries = queries

    async def CreatePost(
        self, request: post_service_pb2.CreatePostRequest, context: Context
    ) -> post_pb2.Post:
        if not request.HasField("post"):
            raise InvalidArgument.for_field("post", "is required", reason=Reason.MISSING_FIELD)
        message = request.post
        _check_list_sizes(message)
        new = NewPost(
            user_id=required_user_id(message.user_id, "post.user_id"),
            account_id=parse_uuid(message.account_id, "post.account_id"),
            text=message.text,
            media_ids=list(message.media_ids),
            reply_to_x_post_id=message.reply_to_x_post_id,
            priority=priority_from_proto(message.priority, "post.priority") or Priority.NORMAL,
            attachment_ids=parse_uuids(message.attachment_ids, "post.attachment_ids"),
            thread=list(message.thread),
            campaign_id=parse_uuid(message.campaign_id, "post.campaign_id")
            if message.campaign_id
            else None,
        )
        screened = await self._posts.create_screened(current_principal(), new, request.request_id)
        return post_to_proto(screened.post, screened.findings)

    async def GetPost(
        self, request: post_service_pb2.GetPostRequest, context: Context
    ) -> post_pb2.Post:
        post_id = parse_uuid(request.post_id, "post_id")
        return post_to_proto(await self._queries.get(current_principal(), post_id))

    async def ListPosts(
        self, request: post_service_pb2.ListPostsRequest, context: Context
    ) -> post_service_pb2.ListPostsResponse:
        where = PostQuery(
            user_id=checked_user_id(request.user_id) if request.user_id else None,
            account_id=parse_uuid(request.account_id, "account_id") if request.account_id else None,
            state=post_state_from_proto(request.state),
        )
        page = await self._posts.list(
            current_principal(), where, request.page_size, request.page_token
        )
        return post_service_pb2.ListPostsResponse(
            posts=[post_to_proto(post) for post in page.items],
            next_page_token=page.next_page_token,
        )

    async def UpdatePost(
        self, request: post_service_pb2.UpdatePostRequest, context: Context
    ) -> post_pb2.Post:
        if not request.HasField("post"):
            raise InvalidArgument.for_field("post", "is required", reason=Reason.MISSING_FIELD)
        message = request.post
        post_id = parse_uuid(message.id, "post.id")
        _check_list_sizes(message)
        paths = mask_paths(request.update_mask, WRITABLE, "post")
        if not paths:
            # No mask: every writable field the caller set.
            paths = {field.name for field, _ in message.ListFields() if field.name in WRITABLE}
        patch = PostPatch(
            text=message.text if "text" in paths else None,
            media_ids=list(message.media_ids) if "media_ids" in paths else None,
            reply_to_x_post_id=message.reply_to_x_post_id
            if "reply_to_x_post_id" in paths
            else None,
            account_id=parse_uuid(message.account_id, "post.account_id")
            if "account_id" in paths
            else None,
            priority=(priority_from_proto(message.priority, "post.priority") or Priority.NORMAL)
            if "priority" in paths
            else None,
            attachment_ids=parse_uuids(message.attachment_ids, "post.attachment_ids")
            if "attachment_ids" in paths
            else None,
            thread=list(message.thread) if "thread" in paths else None,
            campaign_id=_campaign_patch(message.campaign_id) if "campaign_id" in paths else None,
        )
        screened = await self._posts.update_screened(
            current_principal(), post_id, patch, message.etag
        )
        return post_to_proto(screened.post, screened.findings)

    async def DeletePost(
        self, request: post_service_pb2.DeletePostRequest, context: Context
    ) -> empty_pb2.Empty:
        post_id = parse_uuid(request.post_id, "post_id")
        await self._posts.delete(current_principal(), post_id, request.etag)
        return empty_pb2.Empty()

    async def UploadMedia(
        self, request: post_service_pb2.UploadMediaRequest, context: Context
    ) -> media_pb2.Media:
        new = NewMedia(
            user_id=required_user_id(request.user_id),
            mime_type=request.mime_type,
            data=request.data,
        )
        media = await self._media.upload(current_principal(), new, request.request_id)
        return media_to_proto(media)


def _campaign_patch(value: str) -> UUID:
    """An empty campaign id in the mask takes the post out of its campaign."""
    return parse_uuid(value, "post.campaign_id") if value else NO_CAMPAIGN
