"""Matching a sent post with X's rewritten text (domain/x_matching.py)."""

from __future__ import annotations

import pytest

from post_management.domain.x_matching import canonical_text, same_media, same_post


@pytest.mark.parametrize(
    ("raw", "kwargs", "expected"),
    [
        ("read  https://example.com/a?b=1 now", {}, "read \u27e6example.com/a?b=1\u27e7 now"),
        # Bare domains keep their address, as links do (never one shared placeholder).
        (
            "see example.com/path and www.x.org",
            {},
            "see \u27e6example.com/path\u27e7 and \u27e6www.x.org\u27e7",
        ),
        ("HTTPS://Example.COM/Path/.", {}, "\u27e6example.com/Path\u27e7"),
        ("Tom &amp; Jerry &lt;3", {"unescape": True}, "Tom & Jerry <3"),
        ("Tom &amp; Jerry", {}, "Tom &amp; Jerry"),  # our side is meant literally
        ("Cafe\u0301\n\tlatte ", {}, "Caf\u00e9 latte"),  # NFC, whitespace collapsed
        ("@alice @bob_2 thanks", {}, "@alice @bob_2 thanks"),  # handles are kept
        ("mail bob@example.com", {}, "mail bob@example.com"),  # no link in an address
    ],
)
def test_canonical_text(raw: str, kwargs: dict[str, bool], expected: str) -> None:
    assert canonical_text(raw, **kwargs) == expected


def test_a_url_comes_back_as_a_t_co_link() -> None:
    sent = "New post: https://example.com/blog/1."
    assert same_post(sent, 0, "New post: https://t.co/AbCdEf1234.")
    assert same_post(
        sent, 0, "New post: https://t.co/AbCdEf1234.", x_urls=["https://example.com/blog/1"]
    )


def test_expanded_urls_tell_posts_apart_that_differ_only_in_links() -> None:
    x_text = "New post: https://t.co/AbCdEf1234"
    sent = "New post: https://example.com/blog/2"
    assert not same_post(sent, 0, x_text, x_urls=["https://example.com/blog/1"])
    assert same_post(sent, 0, x_text, x_urls=["https://EXAMPLE.com/blog/2/"])


def test_html_escaped_characters_match() -> None:
    assert same_post("Q&A <today> & more", 0, "Q&amp;A &lt;today&gt; &amp; more")
    assert not same_post("Q&A today", 0, "Q&amp;A tomorrow")


def test_a_media_link_is_dropped_when_the_post_has_media() -> None:
    x_text = "holiday https://t.co/Zz9Yy8Xx7W"
    assert same_post("holiday", 1, x_text, x_media_count=1)
    assert same_post("holiday", 1, x_text)  # media keys unknown: the link says media
    assert not same_post("holiday", 0, x_text)  # no media sent: the link is a URL
    assert not same_post("holiday", 2, x_text, x_media_count=1)


def test_a_url_with_media_keeps_its_own_link() -> None:
    sent = "photos at https://example.com"
    assert same_post(sent, 1, "photos at https://t.co/aaaaaaaaaa https://t.co/bbbbbbbbbb")
    # X did not append a media link: the last link is ours.
    assert same_post(sent, 1, "photos at https://t.co/aaaaaaaaaa", x_media_count=1)


def test_a_media_only_post_matches_an_empty_post_with_media() -> None:
    assert same_post("", 1, "https://t.co/Zz9Yy8Xx7W", x_media_count=1)
    assert same_post("", 1, "https://t.co/Zz9Yy8Xx7W")
    assert same_post("", 2, "", x_media_count=2)
    assert not same_post("", 1, "", x_media_count=0)
    assert not same_post("", 1, "")  # nothing says it has media
    assert not same_post("", 1, "hello https://t.co/Zz9Yy8Xx7W", x_media_count=1)


def test_a_reply_may_gain_leading_mentions() -> None:
    assert same_post("2/3 the details", 0, "@me 2/3 the details", reply=True)
    assert same_post("@bob see this", 0, "@alice @bob see this", reply=True)
    assert not same_post("2/3 the details", 0, "@me 2/3 the details")


def test_whitespace_and_normalisation_differences_match() -> None:
    assert same_post("Caf\u00e9  au\nlait", 0, "Cafe\u0301 au lait")
    assert not same_post("hello", 0, "Hello")  # case is kept, as X keeps it


def test_bare_domains_and_handles_compare_literally() -> None:
    sent = "Deal at shop-b.com today @shop_b"
    assert not same_post(sent, 0, "Deal at shop-a.com today @shop_b")
    assert not same_post(sent, 0, "Deal at shop-b.com today @shop_a")
    assert same_post(sent, 0, "Deal at shop-b.com today @shop_b")
    # X made the bare domain a t.co link: its expanded URL still names the shop.
    linked = "Deal at https://t.co/AbCdEf1234 today @shop_b"
    assert same_post(sent, 0, linked, x_urls=["http://shop-b.com"])
    assert not same_post(sent, 0, linked, x_urls=["http://shop-a.com"])


def test_a_reply_gains_mentions_only_in_front() -> None:
    assert not same_post("@bob see this", 0, "@alice see this", reply=True)
    assert not same_post("see this", 0, "@alice see this now", reply=True)


def test_media_match_by_the_ids_that_were_sent() -> None:
    assert same_media(["1800", "1801"], ["3_1801", "3_1800"])
    assert not same_media(["1800"], ["3_1799"])  # same count, another upload
    assert not same_media([], ["3_1800"])
    assert not same_media(["1800"], [])
    assert same_media(["1800"], None)  # not asked for: proves nothing


def test_expanded_urls_drop_the_media_link() -> None:
    x_text = "holiday https://t.co/Zz9Yy8Xx7W"
    page = ["https://x.com/i/status/1900/photo/1"]
    assert same_post("holiday", 1, x_text, x_urls=page, x_media_count=1)
    assert same_post("", 1, "https://t.co/Zz9Yy8Xx7W", x_urls=page, x_media_count=1)
    assert not same_post("holiday", 0, x_text, x_urls=page)


def test_expanded_urls_that_do_not_pair_with_the_links_never_match_a_link() -> None:
    # X listed other URLs than its text has t.co links: the address behind the link
    # is unknown, so a look-alike with another shop must not be taken for ours.
    x_text = "Deal at https://t.co/abc123 today"
    assert not same_post("Deal at https://shop-a.com today", 0, x_text, x_urls=[])
    assert not same_post(
        "Deal at https://shop-a.com today", 0, x_text, x_urls=["https://a.io", "https://b.io"]
    )
    # Without links in what was sent there is nothing to mix up.
    assert same_post("Plain words", 0, "Plain words", x_urls=["https://x.com/extra"])
    # With no expanded URLs given at all, links still compare as placeholders.
    assert same_post("Deal at https://shop-a.com today", 0, x_text)
