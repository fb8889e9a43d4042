"""Content rules X applies to a post, checked before anything is stored."""

from __future__ import annotations

import re
import unicodedata

from post_management.domain.errors import FieldViolation
from post_management.domain.x_urls import INVALID_CHARACTERS, url_spans

MAX_WEIGHTED_LENGTH = 280
MAX_MEDIA = 4
URL_WEIGHT = 23
# Far longer than any valid post (even one with long URLs, which weigh 23):
# such texts are refused unweighed, so a huge request costs no CPU.
MAX_TEXT_CODE_POINTS = 25_000
# X's weighting (twitter-text config v3): these ranges weigh 1, all else 2.
_LIGHT_RANGES = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
# Control characters other than newline and tab are never legitimate in a post.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_X_ID = re.compile(r"[0-9]{1,19}")


# An emoji, however many code points it is made of (skin tones, ZWJ families,
# flags, keycaps), counts 2 like one wide character.
_EMOJI = re.compile(
    r"(?:[\U0001F1E6-\U0001F1FF]{2})"  # a flag: two regional indicators
    r"|(?:[0-9#*]\uFE0F?\u20E3)"  # a keycap
    r"|(?:[\u00A9\u00AE\u203C-\u3299\U0001F000-\U0001FAFF]\uFE0F"
    r"|[\u2300-\u23FF\u2600-\u27BF\u2B00-\u2BFF\U0001F000-\U0001FAFF])"
    r"[\U0001F3FB-\U0001F3FF\uFE0F\U000E0020-\U000E007F]*"
    r"(?:\u200D(?:[\u00A9\u00AE\u203C-\u3299\U0001F000-\U0001FAFF])\uFE0F?"
    r"[\U0001F3FB-\U0001F3FF\U000E0020-\U000E007F]*)*"
)


_LINE_BREAK = re.compile(r"\r\n|\r")


def weighted_length(text: str) -> int:
    """Length as X counts it: NFC, URLs count 23, emoji and wide characters 2.

    URLs are found as twitter-text finds them (domain/x_urls.py); emoji are matched
    here rather than from a fixed list, so sequences newer than a list still count 2.
    """
    normalized = _LINE_BREAK.sub("\n", unicodedata.normalize("NFC", text))
    spans = url_spans(normalized)
    total = URL_WEIGHT * len(spans)
    previous = 0
    for start, end in [*spans, (len(normalized), len(normalized))]:
        total += _weigh_plain(normalized[previous:start])
        previous = end
    return total


def _weigh_plain(text: str) -> int:
    if text.isascii():
        return len(text)  # no emoji, and every ASCII character weighs 1
    total = 2 * len(_EMOJI.findall(text))
    for char in _EMOJI.sub("", text):
        code = ord(char)
        total += 1 if any(lo <= code <= hi for lo, hi in _LIGHT_RANGES) else 2
    return total


def has_invalid_characters(text: str) -> bool:
    """X refuses a post holding U+FFFE, U+FEFF or U+FFFF."""
    # Three substring searches, not a Python loop over every character: a text of
    # millions of characters is answered in milliseconds.
    return any(char in text for char in INVALID_CHARACTERS)


def content_violations(
    text: str,
    media_ids: list[str],
    reply_to_x_post_id: str,
    prefix: str = "post",
    *,
    attachments: int = 0,
) -> list[FieldViolation]:
    """Every rule the content breaks, as field violations (empty when fine).

    `attachments` counts media uploaded here (domain/media.py checks them).
    """
    problems: list[FieldViolation] = []
    if not text.strip() and not media_ids and not attachments:
        problems.append(FieldViolation(f"{prefix}.text", "a post needs text or media"))
    if _CONTROL.search(text):
        problems.append(FieldViolation(f"{prefix}.text", "contains control characters"))
    if has_invalid_characters(text):
        problems.append(
            FieldViolation(f"{prefix}.text", "contains U+FFFE, U+FEFF or U+FFFF, which X refuses")
        )
    if len(text) > MAX_TEXT_CODE_POINTS:
        problems.append(
            FieldViolation(
                f"{prefix}.text",
                f"is {len(text)} characters long; X allows at most {MAX_WEIGHTED_LENGTH} "
                f"weighted characters and texts over {MAX_TEXT_CODE_POINTS} are not weighed",
            )
        )
    elif (length := weighted_length(text)) > MAX_WEIGHTED_LENGTH:
        problems.append(
            FieldViolation(
                f"{prefix}.text",
                f"is {length} weighted characters; X allows {MAX_WEIGHTED_LENGTH}",
            )
        )
    if len(media_ids) > MAX_MEDIA:
        problems.append(
            FieldViolation(f"{prefix}.media_ids", f"at most {MAX_MEDIA} media per post")
        )
    # Elements are looked at only within the limit.
    for index, media_id in enumerate(media_ids[:MAX_MEDIA]):
        if not _X_ID.fullmatch(media_id):
            problems.append(
                FieldViolation(f"{prefix}.media_ids[{index}]", "must be a numeric X media id")
            )
    if reply_to_x_post_id and not _X_ID.fullmatch(reply_to_x_post_id):
        problems.append(
            FieldViolation(f"{prefix}.reply_to_x_post_id", "must be a numeric X post id")
        )
    return problems
