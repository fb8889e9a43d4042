"""Storage ports for media: the files users upload, and their uploads to X."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

from post_management.domain.media import Media, MediaKind


class MediaRepository(Protocol):
    """Inside a unit of work, beside the posts that attach the media."""

    def add(self, media: Media, data: bytes) -> None: ...

    def get(self, media_id: UUID) -> Media | None: ...

    def kinds(self, user_id: str, media_ids: Sequence[UUID]) -> dict[UUID, MediaKind]:
        """The kind of each of these ids that is a media item of `user_id`; the rows
        stay share-locked until the transaction ends, so a purge cannot take media a
        post is being given."""
        ...

    def usage(self, user_id: str) -> tuple[int, int]:
        """(items, bytes) the user keeps stored. Holds a per-user lock until the
        transaction ends, so concurrent uploads are counted one after another."""
        ...


class MediaUploads(Protocol):
    """What the publisher needs, each call its own transaction: an upload to X is
    recorded the moment it succeeds, whatever happens to the post afterwards."""

    def uploaded(
        self, account_id: UUID, media_ids: Sequence[UUID], since: datetime
    ) -> dict[UUID, str]:
        """X media ids already uploaded for the account at or after `since`."""
        ...

    def content(self, media_id: UUID) -> tuple[bytes, str] | None:
        """(data, mime type), or None when the media item is gone."""
        ...

    def record(self, media_id: UUID, account_id: UUID, x_media_id: str, at: datetime) -> None: ...
