"""Spam and offensive-content checks on a post's text, and what an account's policy
makes of them (off: nothing; warn: findings returned and audited; refuse: refused).

The rules are deliberately few and explainable: hashtag and mention stuffing,
floods of one repeated character, links to shorteners known for spam, and offensive
language as scored by a classifier (a port, ports/content.py). Each finding names
its rule, quotes an excerpt of the text and carries a score in [0, 1].

A post's texts are screened when it is written, and the findings (before any
account's policy) are kept with it as a `Screening`: its key names the texts, the
rules and the classifier's model it was made from, so a stored screening whose key
no longer matches is screened again instead of being used.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from post_management.domain.errors import FailedPrecondition, PreconditionViolation
from post_management.domain.reasons import Reason
from post_management.domain.x_urls import url_spans


class ContentPolicy(enum.StrEnum):
    OFF = "OFF"
    WARN = "WARN"
    REFUSE = "REFUSE"


DEFAULT_POLICY = ContentPolicy.WARN


def policy_of(posting_rules: Mapping[str, Any]) -> ContentPolicy:
    """An account's policy from its stored posting rules (default: warn)."""
    name = str(posting_rules.get("content_policy", "")).removeprefix("CONTENT_POLICY_")
    return ContentPolicy(name) if name in ContentPolicy.__members__ else DEFAULT_POLICY


class Rule(enum.StrEnum):
    HASHTAG_STUFFING = "HASHTAG_STUFFING"
    MENTION_STUFFING = "MENTION_STUFFING"
    REPEATED_CHARACTERS = "REPEATED_CHARACTERS"
    SPAM_SHORTENER = "SPAM_SHORTENER"
    OFFENSIVE_LANGUAGE = "OFFENSIVE_LANGUAGE"


@dataclass(frozen=True)
class Finding:
    rule: Rule
    excerpt: str
    score: float


# X's own guidance is one or two hashtags; six or more, or tags making up most of
# the words, reads as stuffing. The same for mentions (mass-mention spam).
MAX_TAGS = 5
TAG_SHARE = 0.5
MIN_TAGS_FOR_SHARE = 4
# A run of one character this long ("!!!!!!!!!!", "soooooooooo") is a flood.
FLOOD_RUN = 10
# Above this probability the classifier's verdict counts as offensive.
OFFENSIVE_THRESHOLD = 0.8
EXCERPT_LENGTH = 40
# Ad-paid and throwaway shorteners that spam campaigns use to hide their targets;
# mainstream shorteners (bit.ly, t.co, ...) are not on the list.
SPAM_SHORTENERS = frozenset(
    {
        "adf.ly",
        "adfoc.us",
        "bc.vc",
        "bit.do",
        "clk.sh",
        "cutt.us",
        "exe.io",
        "fc.lc",
        "gestyy.com",
        "j.gs",
        "linkbucks.com",
        "ouo.io",
        "ouo.press",
        "q.gs",
        "sh.st",
        "shorte.st",
        "shrinkearn.com",
        "shrinkme.io",
        "tmearn.com",
        "u.bb",
        "v.gd",
        "za.gl",
    }
)

_HASHTAG = re.compile(r"(?<![\w&])[#\uff03]\w+")
_MENTION = re.compile(r"(?<![\w@])[@\uff20]\w{1,15}")
_WORD = re.compile(r"\S+")
_FLOOD = re.compile(rf"(\S)\1{{{FLOOD_RUN - 1},}}")
_HOST = re.compile(r"^(?:https?://)?([^/?#:]+)", re.IGNORECASE)

OffensiveScorer = Callable[[Sequence[str]], list[float]]

# Bump when content_findings finds something else in the same text (a new rule, a
# changed pattern or URL rule): every stored screening is then screened again. The
# tunable constants above are part of the key by themselves.
RULES_VERSION = 1
_RULES = repr(
    (
        RULES_VERSION,
        MAX_TAGS,
        TAG_SHARE,
        MIN_TAGS_FOR_SHARE,
        FLOOD_RUN,
        OFFENSIVE_THRESHOLD,
        EXCERPT_LENGTH,
        sorted(SPAM_SHORTENERS),
        [p.pattern for p in (_HASHTAG, _MENTION, _WORD, _FLOOD, _HOST)],
    )
)


@dataclass(frozen=True)
class Screening:
    """What the rules found in a post's texts, before any account's policy, and the
    key of what was screened (screening_key)."""

    key: str
    findings: tuple[Finding, ...] = ()


def screening_key(texts: Sequence[str], model: str) -> str:
    """Names the texts, the rules and the classifier's model (empty: none)."""
    digest = hashlib.sha256()
    for part in (_RULES, model, *texts):
        encoded = part.encode()
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.hexdigest()


def screen(
    texts: Sequence[str], offensive: OffensiveScorer | None, model: str, key: str = ""
) -> Screening:
    """Every rule any of `texts` trips, each finding once, in text order."""
    findings: list[Finding] = []
    for text in texts:
        for finding in content_findings(text, offensive):
            if finding not in findings:
                findings.append(finding)
    return Screening(key or screening_key(texts, model), tuple(findings))


def content_findings(text: str, offensive: OffensiveScorer | None) -> list[Finding]:
    """Every rule `text` trips, in a stable order (empty for clean copy)."""
    findings: list[Finding] = []
    words = _WORD.findall(text)
    for rule, pattern in ((Rule.HASHTAG_STUFFING, _HASHTAG), (Rule.MENTION_STUFFING, _MENTION)):
        tags = pattern.findall(text)
        stuffed = len(tags) > MAX_TAGS or (
            len(tags) >= MIN_TAGS_FOR_SHARE and len(tags) / max(len(words), 1) > TAG_SHARE
        )
        if stuffed:
            score = min(1.0, len(tags) / (2 * MAX_TAGS))
            findings.append(Finding(rule, _excerpt(" ".join(tags)), round(max(score, 0.5), 3)))
    flood = max(_FLOOD.finditer(text), key=lambda m: len(m.group(0)), default=None)
    if flood is not None:
        score = min(1.0, len(flood.group(0)) / (3 * FLOOD_RUN))
        findings.append(
            Finding(Rule.REPEATED_CHARACTERS, _excerpt(flood.group(0)), round(max(score, 0.5), 3))
        )
    for start, end in url_spans(text):
        url = text[start:end]
        host = _HOST.match(url)
        name = host.group(1).lower().removeprefix("www.") if host else ""
        if name in SPAM_SHORTENERS:
            findings.append(Finding(Rule.SPAM_SHORTENER, _excerpt(url), 1.0))
    if offensive is not None and text.strip():
        finding = _offensive(text, words, offensive)
        if finding is not None:
            findings.append(finding)
    return findings


def _offensive(text: str, words: list[str], offensive: OffensiveScorer) -> Finding | None:
    """Scored on the whole text; the excerpt is its most offensive word (or the text)."""
    (overall,) = offensive([text])
    if overall < OFFENSIVE_THRESHOLD:
        return None
    excerpt = text
    if words:
        scores = offensive(words)
        worst = max(range(len(words)), key=scores.__getitem__)
        if scores[worst] >= OFFENSIVE_THRESHOLD:
            excerpt = words[worst]
    return Finding(Rule.OFFENSIVE_LANGUAGE, _excerpt(excerpt), round(overall, 3))


def _excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT_LENGTH else text[: EXCERPT_LENGTH - 1] + "…"


def apply_policy(policy: ContentPolicy, findings: list[Finding]) -> list[Finding]:
    """What the caller gets back: nothing when off, the findings when warning; a
    refusing policy raises FAILED_PRECONDITION (reason CONTENT_POLICY) instead."""
    if policy is ContentPolicy.OFF or not findings:
        return []
    if policy is ContentPolicy.REFUSE:
        raise content_refused(findings)
    return findings


def content_refused(findings: list[Finding]) -> FailedPrecondition:
    """FAILED_PRECONDITION, reason CONTENT_POLICY, one PreconditionFailure entry per
    finding (type: the rule, subject: the excerpt, description: the score)."""
    rules = ", ".join(sorted({finding.rule.value for finding in findings}))
    return FailedPrecondition(
        f"the account's content policy refuses this text ({rules})",
        reason=Reason.CONTENT_POLICY,
        metadata={"rules": rules},
        violations=[
            PreconditionViolation(finding.rule.value, finding.excerpt, f"score {finding.score}")
            for finding in findings
        ],
    )
