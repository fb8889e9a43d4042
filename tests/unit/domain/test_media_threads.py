"""Media kind, size, count and mixing rules; thread segment rules."""

from __future__ import annotations

import mmap
import uuid

import pytest

from post_management.domain.errors import FailedPrecondition
from post_management.domain.media import (
    MB,
    MediaKind,
    attachment_violations,
    kind_of,
    upload_violations,
)
from post_management.domain.threads import (
    MAX_FOLLOW_UPS,
    ensure_published_segments_kept,
    thread_violations,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 64
WEBP = b"RIFF\0\0\0\0WEBPVP8 " + b"\0" * 64
GIF = b"GIF89a" + b"\0" * 64
MP4 = b"\0\0\0\x18ftypmp42" + b"\0" * 64


def _fields(problems: list) -> list[str]:  # type: ignore[type-arg]
    return [p.field for p in problems]


@pytest.mark.parametrize(
    ("mime", "data", "kind"),
    [
        ("image/png", PNG, MediaKind.IMAGE),
        ("image/jpeg", JPEG, MediaKind.IMAGE),
        ("image/webp", WEBP, MediaKind.IMAGE),
        ("IMAGE/GIF", GIF, MediaKind.GIF),
        ("video/mp4", MP4, MediaKind.VIDEO),
    ],
)
def test_accepted_types_and_their_kinds(mime: str, data: bytes, kind: MediaKind) -> None:
    assert upload_violations(mime, data) == []
    assert kind_of(mime) is kind


def test_unknown_type_empty_file_and_mislabelled_file_are_refused() -> None:
    assert _fields(upload_violations("image/bmp", b"BM")) == ["mime_type"]
    assert _fields(upload_violations("video/quicktime", MP4)) == ["mime_type"]
    assert _fields(upload_violations("image/png", b"")) == ["data"]
    (problem,) = upload_violations("image/png", JPEG)
    assert problem.field == "data" and "not a image/png" in problem.description


@pytest.mark.parametrize(
    ("mime", "header", "limit"),
    [("image/png", PNG, 5 * MB), ("image/gif", GIF, 15 * MB), ("video/mp4", MP4, 512 * MB)],
)
def test_size_limits_per_kind(mime: str, header: bytes, limit: int) -> None:
    # The file one byte over the limit, and the same file at it, are views of one
    # zero-filled anonymous mapping: the check reads only their length and first
    # bytes, and writing and copying 512 MB of bytes twice took seconds.
    with mmap.mmap(-1, limit + 1) as mapped:
        mapped[: len(header)] = header
        with memoryview(mapped) as over, over[:limit] as at_limit:
            assert upload_violations(mime, at_limit) == []
            (problem,) = upload_violations(mime, over)
    assert problem.field == "data" and f"{limit // MB} MB" in problem.description


def _ids(*kinds: MediaKind | None) -> list[tuple[uuid.UUID, MediaKind | None]]:
    return [(uuid.uuid4(), kind) for kind in kinds]


def test_up_to_four_images() -> None:
    image = MediaKind.IMAGE
    assert attachment_violations(_ids(image, image, image, image), []) == []
    assert _fields(attachment_violations(_ids(image, image, image, image, image), [])) == [
        "post.attachment_ids"
    ]
    # Ids the client uploaded to X itself count toward the four.
    assert _fields(attachment_violations(_ids(image, image, image), ["1", "2"])) == [
        "post.attachment_ids"
    ]
    assert attachment_violations(_ids(image, image), ["1", "2"]) == []


@pytest.mark.parametrize("alone", [MediaKind.GIF, MediaKind.VIDEO])
def test_a_gif_or_a_video_goes_alone(alone: MediaKind) -> None:
    assert attachment_violations(_ids(alone), []) == []
    for mixed in (_ids(alone, MediaKind.IMAGE), _ids(MediaKind.IMAGE, alone), _ids(alone, alone)):
        problems = attachment_violations(mixed, [])
        assert any("only media" in p.description for p in problems), mixed
    assert any("only media" in p.description for p in attachment_violations(_ids(alone), ["9"]))


def test_unknown_and_repeated_attachments_name_their_index() -> None:
    twice = uuid.uuid4()
    problems = attachment_violations(
        [(twice, MediaKind.IMAGE), (uuid.uuid4(), None), (twice, MediaKind.IMAGE)], []
    )
    assert _fields(problems) == ["post.attachment_ids[1]", "post.attachment_ids[2]"]


def test_thread_segments_are_checked_like_a_post() -> None:
    assert thread_violations("one", ["two", "three"]) == []
    problems = thread_violations("one", ["", "x" * 281, "bad\x07", "ok"])
    assert _fields(problems) == ["post.thread[0]", "post.thread[1]", "post.thread[2]"]
    assert "280" in problems[1].description


def test_thread_segments_differ_from_each_other_and_the_post() -> None:
    problems = thread_violations("Same  text", ["other", "Same text", "other "])
    assert _fields(problems) == ["post.thread[1]", "post.thread[2]"]
    # Case differs: X treats them as different posts.
    assert thread_violations("same", ["Same"]) == []


def test_thread_length_is_bounded() -> None:
    assert thread_violations("p", [f"s{i}" for i in range(MAX_FOLLOW_UPS)]) == []
    problems = thread_violations("p", [f"s{i}" for i in range(MAX_FOLLOW_UPS + 1)])
    assert _fields(problems) == ["post.thread"]


def test_published_segments_cannot_change() -> None:
    before = (["a", "b", "c"], "", [], ["m"])
    ensure_published_segments_kept(0, before, (["z"], "1", [], []))
    ensure_published_segments_kept(2, before, (["a", "b", "changed", "d"], "", [], ["m"]))
    for after in (
        (["a", "B", "c"], "", [], ["m"]),
        (["a"], "", [], ["m"]),
        (["a", "b", "c"], "", [], []),
        (["a", "b", "c"], "5", [], ["m"]),
    ):
        with pytest.raises(FailedPrecondition):
            ensure_published_segments_kept(2, before, after)
