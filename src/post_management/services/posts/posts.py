"""Post use cases: create, get, list, update, delete."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any
from uuid import UUID

from post_management.domain.account import Account
from post_management.domain.auth import Principal
from post_management.domain.content_rules import Finding
from post_management.domain.errors import InvalidArgument, NotFound
from post_management.domain.media import attachment_violations
from post_management.domain.post import (
    NO_CAMPAIGN,
    Post,
    PostEdit,
    PostState,
    Priority,
    ensure_valid_content,
    post_not_found,
)
from post_management.domain.reasons import Reason
from post_management.ports.async_unit_of_work import AsyncUnitOfWork, AsyncUnitOfWorkFactory
from post_management.ports.repositories import PostFilter
from post_management.ports.support import Clock
from post_management.services.posts.cache import PostCache
from post_management.services.posts.content_screening import ContentScreen, findings_entry
from post_management.services.shared import idempotency
from post_management.services.shared.commands import AsyncCommand, AsyncCommandRunner, RequestKey
from post_management.services.shared.common import (
    ensure_account_filter,
    ensure_not_erased,
)
from post_management.services.shared.pagination import (
    Page,
    by_creation,
    decode_token,
    page_of,
    page_size,
)


@dataclass(frozen=True)
class NewPost:
    user_id: str
    account_id: UUID
    text: str
    media_ids: list[str]
    reply_to_x_post_id: str = ""
    priority: Priority = Priority.NORMAL
    attachment_ids: list[UUID] = field(default_factory=list)
    thread: list[str] = field(default_factory=list)
    campaign_id: UUID | None = None

    def digest_fields(self) -> dict[str, Any]:
        """The request as hashed for request ids; fields left empty are omitted so
        ids stored before attachments, threads and campaigns existed still match."""
        fields = asdict(self)
        for name in ("attachment_ids", "thread", "campaign_id"):
            if not fields[name]:
                del fields[name]
        return fields


class PostPatch(PostEdit):
    """UpdatePost's command: the fields to change (None leaves one as it is;
    campaign_id NO_CAMPAIGN takes the post out of its campaign)."""


@dataclass(frozen=True)
class PostQuery:
    """ListPosts' filters; None leaves one open (a user sees their own posts)."""

    user_id: str | None = None
    account_id: UUID | None = None
    state: PostState | None = None


@dataclass(frozen=True)
class Screened:
    """A written post and what the account's content policy found in its text."""

    post: Post
    findings: list[Finding] = field(default_factory=list)


class PostService:
    """The post commands, on the asynchronous unit of work: awaited on the serving
    loop; the classifier (CPU-bound) runs in a worker thread."""

    def __init__(
        self,
        uow: AsyncUnitOfWorkFactory,
        clock: Clock,
        cache: PostCache | None = None,
        screen: ContentScreen | None = None,
    ) -> None:
        self._uow = uow
        self._commands = AsyncCommandRunner(uow)
        self._clock = clock
        self._cache = cache
        self._screen = screen or ContentScreen(None)

    async def create(self, principal: Principal, new: NewPost, request_id: str = "") -> Post:
        return (await self.create_screened(principal, new, request_id)).post

    async def create_screened(
        self, principal: Principal, new: NewPost, request_id: str = ""
    ) -> Screened:
        principal.ensure_can_act_for(new.user_id)
        idempotency.check_request_id(request_id)
        ensure_valid_content(
            new.text, new.media_ids, new.reply_to_x_post_id, new.attachment_ids, new.thread
        )
        key = RequestKey.of(f"CreatePost:{new.user_id}", request_id, new.digest_fields())

        async def create(run: AsyncCommand) -> Screened:
            uow = run.uow
            await ensure_not_erased(uow, new.user_id)
            account = await _own_account(uow, new.user_id, new.account_id, "post.account_id")
            findings, screening = await self._screen.check(account, [new.text, *new.thread])
            await _ensure_attachments(uow, new.user_id, new.attachment_ids, new.media_ids)
            if new.campaign_id is not None:
                await _ensure_own_campaign(uow, new.user_id, new.campaign_id, "post.campaign_id")
            now = self._clock.now()
            post = Post(
                id=uuid.uuid4(),
                user_id=new.user_id,
                account_id=new.account_id,
                text=new.text,
                media_ids=list(new.media_ids),
                reply_to_x_post_id=new.reply_to_x_post_id,
                attachment_ids=list(new.attachment_ids),
                thread=list(new.thread),
                priority=new.priority,
                campaign_id=new.campaign_id,
                created_at=now,
                updated_at=now,
                screening=screening,
            )
            await run.add(post, "post.create")
            await run.record(findings_entry(principal, post, findings, request_id))
            return Screened(post, findings)

        async def replay(uow: AsyncUnitOfWork, earlier: UUID) -> Screened:
            return Screened(await _load(uow, earlier))

        return await self._commands.run(
            principal, create, request=key, replay=replay, replay_first=True
        )

    async def get(self, principal: Principal, post_id: UUID) -> Post:
        """The post from the unit of work (GetPost itself reads through PostQueries)."""
        async with self._uow() as uow:
            post = await _load(uow, post_id)
        principal.ensure_can_act_for(post.user_id)
        return post

    async def list(
        self, principal: Principal, filters: PostQuery, size: int, token: str
    ) -> Page[Post]:
        user_id = filters.user_id
        if user_id is None and principal.role == "user":
            user_id = principal.subject
        where = PostFilter(user_id, filters.account_id, filters.state)
        if where.user_id is not None:
            principal.ensure_can_act_for(where.user_id)
        limit = page_size(size)
        query = {k: str(v) for k, v in asdict(where).items() if v is not None}
        after = decode_token(token, query)
        async with self._uow() as uow:
            await ensure_account_filter(uow, principal, where.account_id)
            posts = await uow.posts.list(where, after, limit + 1)
        return page_of(posts, limit, query, by_creation)

    async def update(
        self, principal: Principal, post_id: UUID, patch: PostPatch, etag: str = ""
    ) -> Post:
        return (await self.update_screened(principal, post_id, patch, etag)).post

    async def update_screened(
        self, principal: Principal, post_id: UUID, patch: PostPatch, etag: str = ""
    ) -> Screened:
        async def update(run: AsyncCommand) -> Screened:
            uow = run.uow
            post = run.track(await _load(uow, post_id), etag)
            # The state and the account move first, then references, then content,
            # whatever a request gets wrong at once.
            post.ensure_editable()
            if patch.account_id is not None and patch.account_id != post.account_id:
                post.ensure_can_move(patch.account_id)
                await _own_account(uow, post.user_id, patch.account_id, "post.account_id")
            if patch.campaign_id is not None and patch.campaign_id != NO_CAMPAIGN:
                await _ensure_own_campaign(uow, post.user_id, patch.campaign_id, "post.campaign_id")
            post.edit(patch, self._clock.now())
            findings: list[Finding] = []
            if patch.text is not None or patch.thread is not None or patch.account_id is not None:
                account = await uow.accounts.get(post.account_id)
                findings = await self._screen.check_post_awaited(post, account)
            if patch.attachment_ids is not None or patch.media_ids is not None:
                await _ensure_attachments(uow, post.user_id, post.attachment_ids, post.media_ids)
            await run.save(post, "post.update")
            await run.record(findings_entry(principal, post, findings))
            return Screened(post, findings)

        screened = await self._commands.run(principal, update)
        await self._forget(post_id)
        return screened

    async def delete(self, principal: Principal, post_id: UUID, etag: str = "") -> None:
        async def delete(run: AsyncCommand) -> None:
            post = run.track(await _load(run.uow, post_id), etag)
            post.ensure_deletable()
            await run.delete(post, "post.delete")

        await self._commands.run(principal, delete)
        await self._forget(post_id)

    async def _forget(self, post_id: UUID) -> None:
        # The engine hook already starts a new generation for every post write;
        # dropping the entry as well covers setups without that hook.
        if self._cache is None:
            return
        await self._cache.forget(post_id)


async def _load(uow: AsyncUnitOfWork, post_id: UUID) -> Post:
    post = await uow.posts.get(post_id)
    if post is None:
        raise post_not_found(post_id)
    return post


async def _ensure_attachments(
    uow: AsyncUnitOfWork, user_id: str, attachment_ids: list[UUID], media_ids: list[str]
) -> None:
    """Another user's media id is reported like an unknown one (INVALID_ARGUMENT), as
    accounts are: the answer must not tell whether someone else's id exists."""
    if not attachment_ids:
        return
    kinds = await uow.media.kinds(user_id, attachment_ids)
    problems = attachment_violations(
        [(media_id, kinds.get(media_id)) for media_id in attachment_ids], media_ids
    )
    if problems:
        raise InvalidArgument(
            "the post's media are invalid", reason=Reason.INVALID_MEDIA, violations=problems
        )


async def _own_account(uow: AsyncUnitOfWork, user_id: str, account_id: UUID, field: str) -> Account:
    account = await uow.accounts.get(account_id)
    if account is None or account.user_id != user_id:
        raise InvalidArgument.for_field(
            field, "is not an account of this user", reason=Reason.UNKNOWN_ACCOUNT
        )
    return account


async def _ensure_own_campaign(
    uow: AsyncUnitOfWork, user_id: str, campaign_id: UUID, field: str
) -> None:
    """A post may only join a campaign of its own user (NOT_FOUND otherwise: another
    user's campaign ids are not revealed)."""
    campaign = await uow.campaigns.get(campaign_id)
    if campaign is None or campaign.user_id != user_id:
        raise NotFound(
            f"{field}: campaign {campaign_id} does not exist",
            reason=Reason.CAMPAIGN_NOT_FOUND,
            metadata={"campaign_id": str(campaign_id)},
        )
