"""Where X sees URLs in a post's text (each weighs 23), found in linear time.

The rules are twitter-text's URL extractor (v3): an optional http(s) scheme, a host of
labels ending in a known top-level domain (or punycode), an optional port, path and
query, and a host whose IDNA form keeps every label within 63 characters. A host
without a scheme counts only for its ASCII part. twitter-text states these rules as one
backtracking regular expression, which takes minutes on a 25,000-character text such as
"a.a.a.…"; here they are evaluated label by label so every text is read a bounded
number of times.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from functools import lru_cache

from post_management.domain.x_tlds import LONGEST_TOP_LEVEL_DOMAIN, TOP_LEVEL_DOMAINS

_PUNCT = frozenset("!'#%&()*+,\\-./:;<=>?@[]^_{|}~$")
_SPACES = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u180e\u2028\u2029\u202f\u205f\u3000"
    + "".join(map(chr, range(0x2000, 0x200B)))
)
INVALID_CHARACTERS = frozenset("\ufffe\ufeff\uffff")
_DIRECTIONAL = frozenset("\u202a\u202b\u202c\u202d\u202e\u061c\u200e\u200f\u2066\u2067\u2068\u2069")
_NOT_IN_HOST = _PUNCT | _SPACES | INVALID_CHARACTERS | _DIRECTIONAL
_ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NOT_BEFORE_URL = _ASCII_ALNUM | frozenset("@\uff20$#\uff03") | INVALID_CHARACTERS
_NOT_AFTER_TLD = _ASCII_ALNUM | frozenset("@+-")
_NOT_BEFORE_BARE_HOST = frozenset("-_./")
_LATIN_ACCENTS = frozenset(
    chr(code)
    for lo, hi in (
        (0xC0, 0xD6),
        (0xD8, 0xF6),
        (0xF8, 0xFF),
        (0x100, 0x24F),
        (0x253, 0x254),
        (0x256, 0x257),
        (0x259, 0x259),
        (0x25B, 0x25B),
        (0x263, 0x263),
        (0x268, 0x268),
        (0x26F, 0x26F),
        (0x272, 0x272),
        (0x289, 0x289),
        (0x28B, 0x28B),
        (0x2BB, 0x2BB),
        (0x300, 0x36F),
        (0x1E00, 0x1EFF),
    )
    for code in range(lo, hi + 1)
)
_CYRILLIC = frozenset(map(chr, range(0x400, 0x500)))
_WORDISH = _ASCII_ALNUM | _LATIN_ACCENTS | _CYRILLIC
_PATH = _WORDISH | frozenset("!*';:=+,.$/%#[]-\u2013_~@|&")
_PATH_END = _WORDISH | frozenset("+-=_#/")
_QUERY = _ASCII_ALNUM | frozenset("!?*'@();:&=+$/%#[]-_.,~|")
_QUERY_END = _ASCII_ALNUM | frozenset("-_&=#/")
_ASCII_HOST = _ASCII_ALNUM | _LATIN_ACCENTS | frozenset("-")
_DIGITS = frozenset("0123456789")
_PUNYCODE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HOST_RUN = re.compile(
    "[^" + "".join(re.escape(char) for char in sorted(_NOT_IN_HOST - set("-_."))) + "]+"
)
# A character that may precede a URL, followed by one that may begin a host.
_ATTEMPT = re.compile(
    "[^"
    + "".join(re.escape(char) for char in sorted(_NOT_BEFORE_URL))
    + "](?=[^"
    + "".join(re.escape(char) for char in sorted(_NOT_IN_HOST))
    + "])"
)
_MAX_URL_LENGTH = 4096
_MAX_TCO_SLUG = 40
_LONGEST_LABEL = 63


def url_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every URL X counts in `text`, in order, never overlapping."""
    if "." not in text:
        return []
    return _Scanner(text).spans()


class _Host:
    """A run of host characters, dots, hyphens and underscores, split into labels."""

    def __init__(self, text: str, start: int, end: int) -> None:
        self.text = text
        starts, ends = [start], []
        while (dot := text.find(".", starts[-1], end)) >= 0:
            ends.append(dot)
            starts.append(dot + 1)
        ends.append(end)
        self.starts, self.ends = starts, ends
        count = len(starts)
        limit = len(text)
        self.tld_end = tld = [_tld_end(text, label, limit) for label in starts]
        # A label is a valid subdomain when it starts and ends on a host character,
        # and a valid domain name when it holds no underscore as well.
        sub = [
            e > b and text[b] not in _NOT_IN_HOST and text[e - 1] not in _NOT_IN_HOST
            for b, e in zip(starts, ends, strict=True)
        ]
        # runs[k]: how many labels from k on are valid subdomain labels.
        runs = [0] * (count + 1)
        for k in range(count - 1, -1, -1):
            runs[k] = runs[k + 1] + 1 if sub[k] else 0
        # best[x]: the largest j <= x whose label j is a TLD after a valid domain name.
        best = [-1] * count
        for j in range(1, count):
            good = tld[j] >= 0 and sub[j - 1] and text.find("_", starts[j - 1], ends[j - 1]) < 0
            best[j] = j if good else best[j - 1]
        self.runs, self.best = runs, best

    def _label_ok(self, start: int, k: int, *, underscore: bool = True) -> bool:
        end = self.ends[k]
        if start >= end or self.text[start] in _NOT_IN_HOST or self.text[end - 1] in _NOT_IN_HOST:
            return False
        return underscore or self.text.find("_", start, end) < 0

    def domain_end(self, start: int) -> int:
        """End of the longest domain that starts at `start`, or -1."""
        k = bisect_right(self.starts, start) - 1
        count = len(self.starts)
        if k + 1 >= count or not self._label_ok(start, k):
            return -1
        j = self.best[min(k + 2 + self.runs[k + 1], count - 1)]
        if j >= k + 2:
            return self.tld_end[j]
        if self.tld_end[k + 1] >= 0 and self._label_ok(start, k, underscore=False):
            return self.tld_end[k + 1]
        return -1


@lru_cache(maxsize=4096)
def _host(text: str, end: int) -> _Host:
    return _Host(text, 0, end)


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.length = len(text)
        self.runs = [(match.start(), match.end()) for match in _HOST_RUN.finditer(text)]
        self.run_starts = [start for start, _ in self.runs]

    def spans(self) -> list[tuple[int, int]]:
        """Attempts run left to right; after a match the next attempt starts at its end
        (its last character may be the next URL's preceding one)."""
        text = self.text
        found: list[tuple[int, int]] = []
        end = -1
        if text[0] not in _NOT_BEFORE_URL:
            end = self._url_at(1, text[0], found)
        if end < 0:
            end = self._url_at(0, "", found)
        attempt = max(end, 1)
        while (candidate := _ATTEMPT.search(text, attempt)) is not None:
            before = candidate.start()
            end = self._url_at(before + 1, text[before], found)
            attempt = end if end > before else before + 1
        return found

    def _domain_end(self, start: int) -> int:
        run = bisect_right(self.run_starts, start) - 1
        if run < 0 or start >= self.runs[run][1]:
            return -1
        if self.text.find(".", start, self.runs[run][1]) < 0:
            return -1
        run_start, run_end = self.runs[run]
        # A host's labels depend only on its characters and the one after it (the
        # TLD look-ahead), so hosts are kept by that text: repeated ones cost once.
        host = _host(self.text[run_start : run_end + 1], run_end - run_start)
        end = host.domain_end(start - run_start)
        return end + run_start if end >= 0 else -1

    def _url_at(self, start: int, before: str, found: list[tuple[int, int]]) -> int:
        """Match one URL at `start`; record it if X counts it. Returns the match's end."""
        text = self.text
        scheme = ""
        head = text[start : start + 8].lower()
        for candidate in ("https://", "http://"):
            if head.startswith(candidate):
                scheme = candidate
        domain_start = start + len(scheme)
        domain_end = self._domain_end(domain_start) if scheme else -1
        if domain_end < 0:
            scheme, domain_start = "", start
            domain_end = self._domain_end(start)
            if domain_end < 0:
                return -1
        end = domain_end
        if end + 1 < self.length and text[end] == ":" and text[end + 1] in _DIGITS:
            end += 1
            while end < self.length and text[end] in _DIGITS:
                end += 1
        has_path = end < self.length and text[end] == "/"
        if has_path:
            end = self._path_end(end + 1)
        if end < self.length and text[end] == "?":
            end = _last_in(text, end + 1, _QUERY, _QUERY_END, fallback=end)
        domain = text[domain_start:domain_end]
        if not _host_is_valid(domain, len(scheme or "https://") + end - start):
            return end
        if not scheme:
            if before and before in _NOT_BEFORE_BARE_HOST:
                return end
            self._ascii_hosts(domain_start, domain_end, end if has_path else -1, found)
            return end
        url_end = self._tco_end(start, end)
        if url_end > 0:
            found.append((start, url_end))
        return end

    def _tco_end(self, start: int, end: int) -> int:
        """A t.co link ends after its slug and query; one with a slug over 40 is no URL (-1)."""
        text = self.text
        head = text[start : start + 13].lower()
        if head.startswith("https://t.co/"):
            prefix = "https://t.co/"
        elif head.startswith("http://t.co/"):
            prefix = "http://t.co/"
        else:
            return end
        slug_end = start + len(prefix)
        while slug_end < end and text[slug_end] in _ASCII_ALNUM:
            slug_end += 1
        slug = slug_end - start - len(prefix)
        if slug == 0:
            return end
        if slug > _MAX_TCO_SLUG:
            return -1
        if slug_end < end and text[slug_end] == "?":
            return _last_in(text, slug_end + 1, _QUERY, _QUERY_END, fallback=slug_end)
        return slug_end

    def _path_end(self, position: int) -> int:
        """The path ends on its last ending character, then takes parenthesised groups
        that follow it directly (twitter-text's pattern allows a group as an ending only
        on its own)."""
        text = self.text
        last = scan = position
        while scan < self.length:
            char = text[scan]
            if char in _PATH:
                scan += 1
                if char in _PATH_END:
                    last = scan
            elif char == "(" and (close := self._balanced_end(scan)) > 0:
                scan = close
            else:
                break
        while last < self.length and text[last] == "(" and (close := self._balanced_end(last)) > 0:
            last = close
        return last

    def _balanced_end(self, position: int) -> int:
        text = self.text
        inner = position + 1
        while inner < self.length and text[inner] in _PATH:
            inner += 1
        if inner < self.length and text[inner] == ")" and inner > position + 1:
            return inner + 1
        if inner >= self.length or text[inner] != "(":
            return -1
        nested = inner + 1
        while nested < self.length and text[nested] in _PATH:
            nested += 1
        if nested == inner + 1 or nested >= self.length or text[nested] != ")":
            return -1
        nested += 1
        while nested < self.length and text[nested] in _PATH:
            nested += 1
        if nested < self.length and text[nested] == ")":
            return nested + 1
        return -1

    def _ascii_hosts(
        self, start: int, end: int, extended_end: int, found: list[tuple[int, int]]
    ) -> None:
        """The ASCII hosts inside a host matched without a scheme: only they count."""
        text = self.text
        starts = [start]
        ends: list[int] = []
        while (dot := text.find(".", starts[-1], end)) >= 0:
            ends.append(dot)
            starts.append(dot + 1)
        ends.append(end)
        count = len(starts)
        ascii_ok = [
            ends[k] > starts[k] and all(text[i] in _ASCII_HOST for i in range(starts[k], ends[k]))
            for k in range(count)
        ]
        runs = [0] * (count + 1)
        for k in range(count - 1, -1, -1):
            runs[k] = runs[k + 1] + 1 if ascii_ok[k] else 0
        tld_ends = [_tld_end(text, label, end) for label in starts]
        best = [-1] * count
        for j in range(count):
            best[j] = j if tld_ends[j] >= 0 else (best[j - 1] if j else -1)
        spans: list[tuple[int, int]] = []
        floor = start
        k = 0
        while k < count - 1:
            first = max(floor, starts[k])
            suffix = ends[k]
            while suffix > first and text[suffix - 1] in _ASCII_HOST:
                suffix -= 1
            if suffix >= ends[k]:
                k += 1
                continue
            j = best[min(k + 1 + runs[k + 1], count - 1)]
            if j < k + 1:
                k += 1
                continue
            spans.append((suffix, tld_ends[j]))
            floor = tld_ends[j]
            k = j if floor < ends[j] else j + 1
        if spans and extended_end >= 0:
            spans[-1] = (spans[-1][0], extended_end)
        found.extend(spans)


def _tld_end(text: str, start: int, limit: int) -> int:
    """End of the top-level domain at `start` (not followed by a letter, digit, @, + or -)."""
    after = start
    stop = min(limit, start + LONGEST_TOP_LEVEL_DOMAIN + 1)
    while after < stop and text[after] in _NOT_AFTER_TLD:
        after += 1
    if after < limit and ord(text[after]) >= 0x80:
        # A TLD in another script (or with an umlaut) may run past ASCII letters.
        for size in range(min(LONGEST_TOP_LEVEL_DOMAIN, limit - start), 1, -1):
            end = start + size
            if text[start:end].lower() in TOP_LEVEL_DOMAINS and (
                end == limit or text[end] not in _NOT_AFTER_TLD
            ):
                return end
    elif after - start >= 2 and text[start:after].lower() in TOP_LEVEL_DOMAINS:
        return after
    if text[start : start + 4].lower() == "xn--":
        end = start + 4
        while end < limit and text[end] in _PUNYCODE:
            end += 1
        if end > start + 4:
            return end
    return -1


def _last_in(
    text: str, position: int, allowed: frozenset[str], ending: frozenset[str], *, fallback: int
) -> int:
    """End of the longest run of `allowed` characters that finishes on an `ending` one."""
    last = fallback
    while position < len(text) and text[position] in allowed:
        position += 1
        if text[position - 1] in ending:
            last = position
    return last


def _host_is_valid(domain: str, url_length: int) -> bool:
    """X refuses a host whose IDNA form is invalid (a label over 63 characters)."""
    if domain.isascii():
        longest = max(map(len, domain.split(".")))
        return longest <= _LONGEST_LABEL and url_length <= _MAX_URL_LENGTH
    try:
        encoded = domain.encode("idna")
    except UnicodeError:
        return False
    if any(len(label) > _LONGEST_LABEL for label in encoded.split(b".")):
        return False
    return url_length + len(encoded) - len(domain) <= _MAX_URL_LENGTH
