"""Media use cases: keep an uploaded file until a post that attaches it is published."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass

from post_management.domain.auth import Principal
from post_management.domain.errors import InvalidArgument, NotFound, ResourceExhausted
from post_management.domain.media import Media, MediaQuota, kind_of, upload_violations
from post_management.domain.reasons import Reason
from post_management.ports.async_unit_of_work import AsyncUnitOfWork, AsyncUnitOfWorkFactory
from post_management.ports.support import Clock
from post_management.services.shared import idempotency
from post_management.services.shared.commands import AsyncCommand, AsyncCommandRunner, RequestKey
from post_management.services.shared.common import ensure_not_erased


@dataclass(frozen=True)
class NewMedia:
    user_id: str
    mime_type: str
    data: bytes


class MediaService:
    """UploadMedia on the asynchronous unit of work: awaited on the serving loop; the
    file's digest (up to 512 MB of hashing) is taken in a worker thread."""

    def __init__(
        self, uow: AsyncUnitOfWorkFactory, clock: Clock, quota: MediaQuota | None = None
    ) -> None:
        self._commands = AsyncCommandRunner(uow)
        self._clock = clock
        self._quota = quota or MediaQuota()

    async def upload(self, principal: Principal, new: NewMedia, request_id: str = "") -> Media:
        principal.ensure_can_act_for(new.user_id)
        idempotency.check_request_id(request_id)
        # The size and signature checks read a few bytes: the file is refused before
        # anything hashes it.
        problems = upload_violations(new.mime_type, new.data)
        if problems:
            raise InvalidArgument("the media file is invalid", violations=problems)
        mime_type = new.mime_type.strip().lower()
        # The bytes' digest stands for them: hashing a JSON dump of 16 MB is slow.
        sha256 = await asyncio.to_thread(_sha256, new.data)
        key = RequestKey.of(
            f"UploadMedia:{new.user_id}", request_id, {"mime_type": mime_type, "sha256": sha256}
        )

        async def upload(run: AsyncCommand) -> Media:
            await ensure_not_erased(run.uow, new.user_id)
            await self._ensure_room(run.uow, new.user_id, len(new.data))
            item = Media(
                id=uuid.uuid4(),
                user_id=new.user_id,
                mime_type=mime_type,
                kind=kind_of(mime_type),
                size_bytes=len(new.data),
                created_at=self._clock.now(),
            )
            await run.uow.media.add(item, new.data)
            await run.created(item, "media.upload")
            return item

        # A known request id is answered before the quota's lock is taken.
        return await self._commands.run(
            principal, upload, request=key, replay=_load, replay_first=True
        )

    async def _ensure_room(self, uow: AsyncUnitOfWork, user_id: str, size: int) -> None:
        items, stored = await uow.media.usage(user_id)
        refusal = self._quota.refusal(items, stored, size)
        if refusal is not None:
            raise ResourceExhausted(
                f"media quota exceeded: {refusal}; media are freed when their posts "
                "have been published for a while, or unattached after a while",
                reason=Reason.MEDIA_QUOTA_EXCEEDED,
                metadata={
                    "stored_items": str(items),
                    "stored_bytes": str(stored),
                    "max_items": str(self._quota.max_items),
                    "max_bytes": str(self._quota.max_bytes),
                },
            )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _load(uow: AsyncUnitOfWork, media_id: uuid.UUID) -> Media:
    item = await uow.media.get(media_id)
    if item is None:
        raise NotFound(f"media {media_id} does not exist", reason=Reason.MEDIA_NOT_FOUND)
    return item
