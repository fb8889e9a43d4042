"""GetPost on the event loop: the post cache, then one asynchronous read.

The same answers as PostService.get (NOT_FOUND for a missing post, PERMISSION_DENIED
for another user's post, the cache's generation rule) without a worker thread.
"""

from __future__ import annotations

from uuid import UUID

from post_management.domain.auth import Principal
from post_management.domain.post import Post, post_not_found
from post_management.ports.post_reads import AsyncPostReader
from post_management.services.posts.cache import PostCache


class PostQueries:
    def __init__(self, reader: AsyncPostReader, cache: PostCache | None) -> None:
        self._reader = reader
        self._cache = cache

    async def get(self, principal: Principal, post_id: UUID) -> Post:
        if self._cache is None:
            post = await self._load(post_id)
        else:
            cached, generation = await self._cache.read(post_id)
            if cached is None:
                # The generation was taken before the read: a write committed meanwhile
                # makes this entry stale at once (services/posts/cache.py).
                post = await self._load(post_id)
                await self._cache.store(post, generation)
            else:
                post = cached
        principal.ensure_can_act_for(post.user_id)
        return post

    async def _load(self, post_id: UUID) -> Post:
        post = await self._reader.get(post_id)
        if post is None:
            raise post_not_found(post_id)
        return post
