"""Is a post on X's timeline the one we sent? X rewrites what it stores.

X returns a post's `text` differently from what was sent: every link becomes a
t.co link (whose expanded URL the timeline's entities give), a post with media
gets a t.co link to the media appended, `&`, `<` and `>` come back HTML-escaped,
and a reply may gain a leading run of `@handle ` mentions. Exact comparison would
call a live post absent, and the reconciler would post it a second time; a loose
one would take another post for ours, and ours would never be sent. So both sides
are brought to a canonical form in which every link, explicit or a bare domain,
stands for its own address (t.co links replaced by their expanded URLs first):
"shop-a.com" and "shop-b.com" stay different, and so do "@shop_a" and "@shop_b".
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
# Bare domains X may turn into links ("example.com/path").
_BARE_DOMAIN = re.compile(
    r"(?<![\w@.\u27e6\u27e7])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}(?:/\S*)?",
    re.IGNORECASE,
)
_LINK = re.compile(f"{_URL.pattern}|{_BARE_DOMAIN.pattern}", re.IGNORECASE)
_TCO = re.compile(r"https?://t\.co/\w+", re.IGNORECASE)
_TRAILING_TCO = re.compile(r"\s*https?://t\.co/\w+\s*$", re.IGNORECASE)
# The expanded URL of the link X appends to a post with media.
_MEDIA_PAGE = re.compile(r"/status/\d+/(?:photo|video)/\d+/?$", re.IGNORECASE)
_LEADING_MENTIONS = re.compile(r"^(?:@\w{1,15}\s+)+")
_URL_TRIM = ".,;:!?)]}'\"\u2019\u201d>"


def _url_key(url: str) -> str:
    """Scheme-less, percent-decoded, host lower-cased, without trailing punctuation
    or slash: X may spell an expanded URL slightly differently from what was sent."""
    url = unquote(url).rstrip(_URL_TRIM).rstrip("/")
    url = re.sub(r"^https?://", "", url, flags=re.IGNORECASE)
    host, slash, rest = url.partition("/")
    return host.lower() + slash + rest


def canonical_text(text: str, *, unescape: bool = False) -> str:
    """NFC, whitespace collapsed, every link (explicit or a bare domain) in one form
    that keeps its address. `unescape` undoes X's HTML escaping (X's side only: a
    sent "&amp;" is meant literally and comes back as "&amp;amp;")."""
    if unescape:
        text = html.unescape(text)
    text = normalize_text(text)
    return _LINK.sub(lambda m: f"\u27e6{_url_key(m.group())}\u27e7", text)


def _opaque_links(text: str) -> str:
    """The form used when X's expanded URLs are unknown: explicit links (t.co ones
    included) become one placeholder; bare domains stay as written."""
    return _URL.sub(URL_PLACEHOLDER, normalize_text(text))


def _expanded(x_text: str, x_urls: Sequence[str], media: bool) -> tuple[str, bool] | None:
    """X's text with each t.co link replaced by its expanded URL (entities come in
    text order) and the appended media link dropped, and whether there was one; None
    when links and URLs do not pair up."""
    links = list(_TCO.finditer(x_text))
    if len(links) != len(x_urls):
        return None
    urls = list(x_urls)
    media_link = bool(
        media and links and _MEDIA_PAGE.search(urls[-1]) and _TRAILING_TCO.search(x_text)
    )
    if media_link:
        x_text = x_text[: links[-1].start()]
        links, urls = links[:-1], urls[:-1]
    for link, url in reversed(list(zip(links, urls, strict=True))):
        x_text = x_text[: link.start()] + url + x_text[link.end() :]
    return x_text, media_link


def _equal(sent: str, x: str, reply: bool) -> bool:
    """Equal, or (a reply) equal after mentions X put in front of what was sent."""
    if x == sent:
        return True
    if not reply or not x.endswith(sent):
        return False
    extra = x[: len(x) - len(sent)]
    return bool(_LEADING_MENTIONS.fullmatch(extra)) if sent else False


def same_media(sent_media_ids: Sequence[str], x_media_keys: Sequence[str] | None) -> bool:
    """Whether X's post carries exactly the media sent. X's media_key is the media id
    behind a type prefix ("3_1800..."). Unknown keys (not asked for) prove nothing."""
    if x_media_keys is None:
        return True
    return sorted(key.partition("_")[2] or key for key in x_media_keys) == sorted(sent_media_ids)


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
    x_text = html.unescape(x_text)
    wanted = canonical_text(sent_text)
    if x_urls is not None and (expanded := _expanded(x_text, x_urls, bool(sent_media_count))):
        text, media_link = expanded
        if sent_media_count and x_media_count is None and not media_link and not wanted:
            return False  # media only, and nothing says X's post has media at all
        return _equal(wanted, canonical_text(text), reply)
    if x_urls is not None and _URL.search(sent_text):
        # X gave expanded URLs that do not pair with its links: ours could not be told
        # from a look-alike with another address. Never adopt on a guess.
        return False
    # Expanded URLs unknown: links compare as placeholders, bare domains as written.
    wanted = _opaque_links(sent_text)
    candidates = [x_text]
    if sent_media_count:
        # X appends a link to the media; drop it, unless it turns out to be ours.
        stripped = _TRAILING_TCO.sub("", x_text)
        if stripped != x_text:
            candidates.insert(0, stripped)
        elif x_media_count is None and not wanted:
            # Media only, and nothing says X's post has media at all.
            return False
    return any(_equal(wanted, _opaque_links(c), reply) for c in candidates)
