"""X webhooks and analytics over REST, through the Envoy that `serve` starts: the raw
body and the signature header must reach the servicer unchanged; the CRC endpoint
cannot be made to sign a delivery; Envoy rate-limits both webhook routes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from post_management.adapters.db.engine import make_engine
from post_management.domain.analytics import Counts
from post_management.domain.auth import Role
from post_management.entrypoints.envoy_config import WEBHOOK_BURST
from post_management.entrypoints.grpc.tokens import TokenCodec
from tests.integration.analytics_fixtures import Data
from tests.support.ports import free_port
from tests.support.process import ServiceProcess, rest_session, running_service

SECRET = "envoy-webhook-secret"
JWT_SECRET = "jwt-secret-for-the-webhook-e2e-test-0123456789"


def sign(body: bytes, secret: str = SECRET) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


@pytest.fixture(scope="module")
def service(
    machine_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    env = {
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": machine_database,
        "X_MODE": "emulator",
        "TWITTER_CONSUMER_KEY": "emulator-consumer-key",
        "TWITTER_CONSUMER_SECRET": SECRET,
        "TWITTER_BEARER_TOKEN": "emulator-bearer-token",
        "DISPATCHER_ENABLED": "false",
        "JWT_SECRET": JWT_SECRET,
        "METRICS_PORT": str(free_port()),
    }
    with running_service(env, Path(tmp_path_factory.mktemp("webhooks"))) as process:
        yield process


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with rest_session() as session:
        yield session


def test_crc_is_public_and_answers_json(service: ServiceProcess, http: requests.Session) -> None:
    response = http.get(f"{service.rest_url}/v1/webhooks/x?crc_token=abc123", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    expected = base64.b64encode(hmac.new(SECRET.encode(), b"abc123", hashlib.sha256).digest())
    assert response.json() == {"response_token": "sha256=" + expected.decode()}


def test_signed_delivery_through_envoy_updates_metrics_once(
    service: ServiceProcess, http: requests.Session, machine_database: str
) -> None:
    engine = make_engine(machine_database)
    data = Data(engine)
    account = data.account("local-user")
    published = datetime.now(UTC) - timedelta(hours=1)
    post = data.post(
        account,
        published_at=published,
        snapshots=[(published + timedelta(minutes=30), Counts(impressions=100, likes=7))],
    )
    engine.dispose()
    event_id = uuid.uuid4().hex
    # Key order and spacing as X might send them: the signature covers these exact bytes.
    favorite = f'{{"id":"{event_id}","favorited_status":{{"id_str":"{post.x_post_id}"}}}}'
    body = f'{{"for_user_id": "{account.x_user_id}",  "favorite_events":[{favorite}]}}'.encode()
    url = f"{service.rest_url}/v1/webhooks/x"
    headers = {"content-type": "application/json"}

    refused = http.post(
        url,
        data=body,
        headers={**headers, "x-twitter-webhooks-signature": sign(body, "x")},
        timeout=10,
    )
    assert refused.status_code == 401, refused.text
    assert refused.json()["details"][0]["reason"] == "WEBHOOK_SIGNATURE_INVALID"
    unsigned = http.post(url, data=body, headers=headers, timeout=10)
    assert unsigned.status_code == 401

    signed = {**headers, "x-twitter-webhooks-signature": sign(body)}
    first = http.post(url, data=body, headers=signed, timeout=10)
    assert first.status_code == 200, first.text
    assert first.json() == {"applied": 1, "duplicates": 0, "ignored": 0}
    again = http.post(url, data=body, headers=signed, timeout=10)
    assert again.json() == {"applied": 0, "duplicates": 1, "ignored": 0}

    codec = TokenCodec(JWT_SECRET, issuer="post-management", audience="post-management")
    minted = codec.mint("local-user", Role.USER, timedelta(minutes=5))
    token = {"authorization": f"Bearer {minted}"}
    metrics = http.get(f"{service.rest_url}/api/posts/{post.id}/metrics", headers=token, timeout=10)
    assert metrics.status_code == 200, metrics.text
    latest = metrics.json()["latest"]
    assert (latest["likes"], latest["impressions"]) == ("8", "100")  # int64 as strings
    analytics = http.get(
        f"{service.rest_url}/api/posts/{post.id}/analytics", headers=token, timeout=10
    )
    assert analytics.status_code == 200, analytics.text
    assert analytics.json()["engagementRate"] == pytest.approx(0.08)
    assert (
        http.get(f"{service.rest_url}/api/posts/{post.id}/metrics", timeout=10).status_code == 401
    )
    assert json.loads(again.text)["duplicates"] == 1


def test_crc_cannot_be_used_to_sign_a_forged_delivery(
    service: ServiceProcess, http: requests.Session, machine_database: str
) -> None:
    """The attack: ask the CRC endpoint to "sign" a delivery body, then POST that body
    with the returned token as its signature."""
    engine = make_engine(machine_database)
    data = Data(engine)
    account = data.account("local-user")
    published = datetime.now(UTC) - timedelta(hours=1)
    post = data.post(
        account,
        published_at=published,
        snapshots=[(published + timedelta(minutes=30), Counts(impressions=50, likes=3))],
    )
    engine.dispose()
    favorite = {"id": uuid.uuid4().hex, "favorited_status": {"id_str": post.x_post_id}}
    body = json.dumps({"for_user_id": account.x_user_id, "favorite_events": [favorite]})
    url = f"{service.rest_url}/v1/webhooks/x"

    crc = http.get(url, params={"crc_token": body}, timeout=10)
    assert crc.status_code == 400, crc.text
    assert crc.json()["details"][0]["reason"] == "CRC_TOKEN_INVALID"
    assert "response_token" not in crc.json()

    forged_signature = crc.json().get("response_token", "")
    delivery = http.post(
        url,
        data=body.encode(),
        headers={
            "content-type": "application/json",
            "x-twitter-webhooks-signature": forged_signature,
        },
        timeout=10,
    )
    assert delivery.status_code == 401, delivery.text
    codec = TokenCodec(JWT_SECRET, issuer="post-management", audience="post-management")
    token = {"authorization": f"Bearer {codec.mint('local-user', Role.USER)}"}
    metrics = http.get(f"{service.rest_url}/api/posts/{post.id}/metrics", headers=token, timeout=10)
    assert metrics.json()["latest"]["likes"] == "3"  # nothing applied


def test_envoy_rate_limits_the_webhook_routes(service: ServiceProcess) -> None:
    """Last in the module: it empties the webhook token bucket of this Envoy."""
    url = f"{service.rest_url}/v1/webhooks/x?crc_token=abc123"

    def crc(_: int) -> int:
        with requests.Session() as session:
            session.trust_env = False
            return session.get(url, timeout=10).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(crc, range(WEBHOOK_BURST + 200)))
    assert set(statuses) == {200, 429}
    assert statuses.count(429) >= 1
    # Envoy refuses before the service is asked: its own budget (1,200 a minute) is
    # far from spent, and other routes are not limited.
    assert requests.get(f"{service.rest_url}/health", timeout=10).status_code == 200
