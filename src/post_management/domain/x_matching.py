"""Is a post on X's timeline the one we sent? X rewrites what it stores.

X returns a post's `text` differently from what was sent: every URL becomes a
t.co link, a post with media gets a t.co link to the media appended, `&`, `<`
and `>` come back HTML-escaped, and a reply may gain a leading run of
`@handle ` mentions. Exact comparison would call a live post absent, and the
reconciler would post it a second time. Both sides are brought to a canonical
form instead; X's expanded URLs, when known, keep two posts that differ only in
their links apart.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from urllib.parse import unquote

from post_management.domain.duplicates import normalize_text

URL_PLACEHOLDER = "\u27e6url\u27e7"
# What the content rules count as a URL (domain/content.py), greedy to the next
# space on both sides, so trailing punctuation X leaves outside a link cancels out.
_URL = re.compile(r"https?://\S+", re.IGNORECASE)
# Bare domains X may also turn into links ("example.com/path"); replaced on both
# sides, so it does not matter whether X linked them.
_BARE_DOMAIN = re.compile(
    r"(?<![\w@.\u27e6\u27e7])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}(?:/\S*)?",
    re.IGNORECASE,
)
_TRAILING_TCO = re.compile(r"\s*https?://t\.co/\w+\s*$", re.IGNORECASE)
_LEADING_MENTIONS = re.compile(r"^(?:@\w{1,15}\s+)+")
_URL_TRIM = ".,;:!?)]}'\"\u2019\u201d>"


def canonical_text(text: str, *, unescape: bool = False, reply: bool = False) -> str:
    """NFC, whitespace collapsed, every URL a placeholder; for a reply, without the
    leading mentions X may add. `unescape` undoes X's HTML escaping (X's side only:
    a sent "&amp;" is meant literally and comes back as "&amp;amp;")."""
    if unescape:
        text = html.unescape(text)
    text = normalize_text(text)
    text = _URL.sub(URL_PLACEHOLDER, text)
    text = _BARE_DOMAIN.sub(URL_PLACEHOLDER, text)
    if reply:
        text = _LEADING_MENTIONS.sub("", text)
    return text


def sent_urls(text: str) -> tuple[str, ...]:
    """The http(s) URLs of a text, comparable with `same_url`."""
    return tuple(_URL.findall(normalize_text(text)))


def _url_key(url: str) -> str:
    """Scheme-less, percent-decoded, host lower-cased, without trailing punctuation
    or slash: X may spell an expanded URL slightly differently from what was sent."""
    url = unquote(url).rstrip(_URL_TRIM).rstrip("/")
    url = re.sub(r"^https?://", "", url, flags=re.IGNORECASE)
    host, slash, rest = url.partition("/")
    return host.lower() + slash + rest


def same_post(
    sent_text: str,
    sent_media_count: int,
    x_text: str,
    *,
    x_media_count: int | None = None,
    x_urls: Sequence[str] | None = None,
    reply: bool = False,
) -> bool:
    """Whether X's post (`x_text` as X returns it, with its media count and expanded
    URLs when the timeline gave them) is the post sent as `sent_text` with
    `sent_media_count` media. `reply`: the post was sent as a reply."""
    if x_media_count is not None and x_media_count != sent_media_count:
        return False
    wanted = canonical_text(sent_text, reply=reply)
    candidates = [x_text]
    if sent_media_count:
        # X appends a link to the media; drop it, unless it turns out to be ours.
        stripped = _TRAILING_TCO.sub("", x_text)
        if stripped != x_text:
            candidates.insert(0, stripped)
        elif x_media_count is None and not wanted:
            # Media only, and nothing says X's post has media at all.
            return False
    if not any(canonical_text(c, unescape=True, reply=reply) == wanted for c in candidates):
        return False
    if x_urls is None:
        return True
    # Every URL we sent must be one X expanded (X adds the media link's own).
    available = [_url_key(u) for u in x_urls]
    for url in sent_urls(sent_text):
        key = _url_key(url)
        if key not in available:
            return False
        available.remove(key)
    return True
