"""The asynchronous client's OAuth 1.0a signer signs as oauthlib (tweepy's) does."""

from __future__ import annotations

from urllib.parse import quote, unquote, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oauthlib.oauth1 import Client

from post_management.adapters.x.oauth import OAuth1Signer, base_string_uri


def _params(header: str) -> dict[str, str]:
    scheme, _, rest = header.partition(" ")
    assert scheme == "OAuth"
    pairs = (part.strip().split("=", 1) for part in rest.split(","))
    return {key: unquote(value.strip('"')) for key, value in pairs}


def _oauthlib(
    method: str, url: str, consumer: tuple[str, str], token: tuple[str, str], nonce: str, ts: str
) -> dict[str, str]:
    client = Client(*consumer, *token, nonce=nonce, timestamp=ts)
    _, headers, _ = client.sign(url, method, headers={"Content-Type": "application/json"})
    return _params(headers["Authorization"])


@pytest.mark.parametrize(
    "url",
    [
        "https://api.twitter.com/2/tweets",
        "http://127.0.0.1:8765/2/tweets",
        "https://API.Twitter.com:443/2/users/12/tweets?max_results=100&start_time=2026-01-01T00:00:00Z",
        "http://localhost:80/1.1/media/upload.json?media_category=tweet_image",
    ],
)
def test_the_header_is_oauthlibs(url: str) -> None:
    consumer = ("consumer key", "consumer~secret/+=")
    token = ("1234-token", "token secret &é")
    query = dict(pair.split("=", 1) for pair in url.partition("?")[2].split("&") if pair)
    ours = OAuth1Signer(*consumer).authorization(
        "POST", url.partition("?")[0], *token, query, nonce="n0nce", timestamp="1700000000"
    )
    assert _params(ours) == _oauthlib("POST", url, consumer, token, "n0nce", "1700000000")


@settings(max_examples=200, deadline=None)
@given(
    consumer_secret=st.text(min_size=1, max_size=40),
    token=st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1),
    token_secret=st.text(min_size=0, max_size=40),
    text=st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=30),
)
def test_any_secret_and_query_value_signs_alike(
    consumer_secret: str, token: str, token_secret: str, text: str
) -> None:
    url = "https://api.twitter.com/2/tweets/search/recent"
    query = {"query": text} if text else {}
    ours = OAuth1Signer("ck", consumer_secret).authorization(
        "GET", url, token, token_secret, query, nonce="abc", timestamp="1"
    )
    client = Client("ck", consumer_secret, token, token_secret, nonce="abc", timestamp="1")
    signed_url = f"{url}?{urlencode(query, quote_via=quote)}" if query else url
    _, headers, _ = client.sign(signed_url, "GET")
    assert _params(ours) == _params(headers["Authorization"])


def test_the_base_string_uri_drops_default_ports_and_the_query() -> None:
    assert base_string_uri("HTTPS://Api.X.com:443/2/tweets?x=1") == "https://api.x.com/2/tweets"
    assert base_string_uri("http://127.0.0.1:8080/2/tweets") == "http://127.0.0.1:8080/2/tweets"
    assert base_string_uri("http://example.com") == "http://example.com/"


def test_each_request_gets_its_own_nonce() -> None:
    signer = OAuth1Signer("ck", "cs")
    first = _params(signer.authorization("POST", "https://api.twitter.com/2/tweets", "t", "s"))
    second = _params(signer.authorization("POST", "https://api.twitter.com/2/tweets", "t", "s"))
    assert first["oauth_nonce"] != second["oauth_nonce"]
    assert first["oauth_signature"] != second["oauth_signature"]
