"""Media a post can carry on X: kinds, sizes, and how many of which may go together.

X allows up to 4 images, or 1 GIF, or 1 video per post (facts: images up to 5 MB
as jpg, png or webp; GIF up to 15 MB; video up to 512 MB as mp4). A GIF always
counts as a GIF here, even a still one: telling still from animated needs a
decoder, and the stricter rule never lets X refuse a post we accepted.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from post_management.domain.errors import FieldViolation

MB = 1024 * 1024
MAX_IMAGES = 4
# What X accepts in one post: ids uploaded here and ids the client uploaded itself.
MAX_MEDIA_PER_POST = 4
# X forgets an uploaded media id after 24 hours; reuse one only well inside that.
X_MEDIA_REUSE_WINDOW = timedelta(hours=23)


class MediaKind(enum.StrEnum):
    IMAGE = "IMAGE"
    GIF = "GIF"
    VIDEO = "VIDEO"


@dataclass(frozen=True)
class MediaType:
    kind: MediaKind
    max_bytes: int
    signatures: tuple[tuple[int, bytes], ...]  # (offset, bytes) any of which must match


MEDIA_TYPES: dict[str, MediaType] = {
    "image/jpeg": MediaType(MediaKind.IMAGE, 5 * MB, ((0, b"\xff\xd8\xff"),)),
    "image/png": MediaType(MediaKind.IMAGE, 5 * MB, ((0, b"\x89PNG\r\n\x1a\n"),)),
    "image/webp": MediaType(MediaKind.IMAGE, 5 * MB, ((8, b"WEBP"),)),
    "image/gif": MediaType(MediaKind.GIF, 15 * MB, ((0, b"GIF87a"), (0, b"GIF89a"))),
    "video/mp4": MediaType(MediaKind.VIDEO, 512 * MB, ((4, b"ftyp"),)),
}


@dataclass(frozen=True)
class Media:
    """An uploaded file kept by the service until its post is published."""

    id: UUID
    user_id: str
    mime_type: str
    kind: MediaKind
    size_bytes: int
    created_at: datetime


def upload_violations(mime_type: str, data: bytes) -> list[FieldViolation]:
    """Why X would refuse this file (empty when it is fine)."""
    media_type = MEDIA_TYPES.get(mime_type.strip().lower())
    if media_type is None:
        accepted = ", ".join(sorted(MEDIA_TYPES))
        return [FieldViolation("mime_type", f"must be one of {accepted}")]
    if not data:
        return [FieldViolation("data", "is empty")]
    problems: list[FieldViolation] = []
    if len(data) > media_type.max_bytes:
        problems.append(
            FieldViolation(
                "data",
                f"is {len(data)} bytes; X allows {media_type.max_bytes // MB} MB "
                f"for {media_type.kind.value.lower()} media",
            )
        )
    # A mislabelled file would only be refused by X at publish time, hours later.
    if not any(
        data[offset : offset + len(magic)] == magic for offset, magic in media_type.signatures
    ):
        problems.append(FieldViolation("data", f"is not a {mime_type} file"))
    return problems


@dataclass(frozen=True)
class MediaQuota:
    """What one user may keep stored at once; 0 is no limit."""

    max_items: int = 100
    max_bytes: int = 2 * 1024 * MB

    def refusal(self, items: int, stored_bytes: int, new_bytes: int) -> str | None:
        """Why one more upload of `new_bytes` does not fit, or None when it does."""
        if self.max_items and items + 1 > self.max_items:
            return f"{items} media items stored; the quota is {self.max_items}"
        if self.max_bytes and stored_bytes + new_bytes > self.max_bytes:
            return (
                f"{stored_bytes} bytes stored and {new_bytes} more; "
                f"the quota is {self.max_bytes} bytes"
            )
        return None


def kind_of(mime_type: str) -> MediaKind:
    return MEDIA_TYPES[mime_type.strip().lower()].kind


def attachment_violations(
    attachments: list[tuple[UUID, MediaKind | None]],
    x_media_ids: list[str],
    prefix: str = "post",
) -> list[FieldViolation]:
    """Count and mixing rules for one post.

    `attachments` are (media id, kind) in order; a None kind means the id is not
    a media item of the post's user. `x_media_ids` are ids the client uploaded to
    X itself (their kind is unknown here, so they only count).
    """
    field = f"{prefix}.attachment_ids"
    problems: list[FieldViolation] = []
    seen: set[UUID] = set()
    for index, (media_id, kind) in enumerate(attachments):
        if kind is None:
            problems.append(FieldViolation(f"{field}[{index}]", "is not a media item of this user"))
        if media_id in seen:
            problems.append(FieldViolation(f"{field}[{index}]", "is attached twice"))
        seen.add(media_id)
    kinds = [kind for _, kind in attachments if kind is not None]
    total = len(attachments) + len(x_media_ids)
    if total > MAX_MEDIA_PER_POST:
        problems.append(
            FieldViolation(
                field, f"{total} media with media_ids; X allows at most {MAX_MEDIA_PER_POST}"
            )
        )
    alone = [kind for kind in kinds if kind is not MediaKind.IMAGE]
    if alone and total > 1:
        problems.append(
            FieldViolation(
                field,
                f"a {alone[0].value.lower()} must be the post's only media; "
                f"X allows up to {MAX_IMAGES} images, or 1 GIF, or 1 video",
            )
        )
    return problems
