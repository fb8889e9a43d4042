"""The published REST contract, sent exactly as documented, through the Envoy that
`post-management serve` starts; and the README's curl examples, run as written."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import grpc
import pytest
import requests
from xmp.posts.v1 import service_info_service_pb2, service_info_service_pb2_grpc

from tests.support.process import ServiceProcess, rest_session, running_service

ROOT = Path(__file__).resolve().parents[2]
USER = "local-user"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    env = {"LOG_LEVEL": "WARNING", "METRICS_INTERVAL_SECONDS": "1"}
    with running_service(env, Path(tmp_path_factory.mktemp("contract"))) as process:
        yield process


@pytest.fixture(scope="module")
def http(service: ServiceProcess) -> Iterator[requests.Session]:
    with rest_session(service.printed_token()) as session:
        yield session


@pytest.fixture(scope="module")
def account_id(service: ServiceProcess, http: requests.Session) -> str:
    response = http.post(
        f"{service.rest_url}/v1/accounts",
        json={
            "userId": USER,
            "handle": "contract",
            "xUserId": "555",
            "credentials": {"accessToken": "t", "accessTokenSecret": "s"},
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def _new_post(service: ServiceProcess, http: requests.Session, account_id: str, text: str) -> str:
    response = http.post(
        f"{service.rest_url}/v1/posts",
        json={"userId": USER, "accountId": account_id, "text": text},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def test_schedule_list_and_cancel_as_documented(
    service: ServiceProcess, http: requests.Session, account_id: str
) -> None:
    base = service.rest_url
    post_id = _new_post(service, http, account_id, "contract schedule")
    day = (datetime.now(UTC) + timedelta(days=40)).date()
    wall = datetime.combine(day, time(9, 30))
    expected = wall.replace(tzinfo=ZoneInfo("America/New_York")).astimezone(UTC)
    scheduled = http.post(
        f"{base}/api/posts/{post_id}/schedule",
        json={
            "userId": USER,
            "scheduledFor": wall.isoformat(),
            "timezone": "America/New_York",
            "priority": "high",
        },
        timeout=10,
    )
    assert scheduled.status_code == 200, scheduled.text
    post = scheduled.json()["post"]
    assert post["state"] == "POST_STATE_SCHEDULED"
    assert post["scheduledFor"] == expected.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert post["timezone"] == "America/New_York" and post["priority"] == "PRIORITY_HIGH"

    empty = http.get(
        f"{base}/api/posts/{USER}/scheduled?limit=20&offset=0&fromDate=2024-01-01&toDate=2024-01-31",
        timeout=10,
    )
    assert empty.status_code == 200, empty.text
    assert empty.json()["totalCount"] == 0 and empty.json()["posts"] == []
    listed = http.get(
        f"{base}/api/posts/{USER}/scheduled?limit=20&offset=0&fromDate={day}&toDate={day}",
        timeout=10,
    )
    assert [p["id"] for p in listed.json()["posts"]] == [post_id]
    assert listed.json()["limit"] == 20 and listed.json()["offset"] == 0

    cancelled = http.delete(
        f"{base}/api/posts/{post_id}/schedule", json={"userId": USER}, timeout=10
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "POST_STATE_CANCELLED"


def test_publish_metrics_analytics_and_stats_as_documented(
    service: ServiceProcess, http: requests.Session, account_id: str
) -> None:
    base = service.rest_url
    post_id = _new_post(service, http, account_id, "contract publish")
    published = http.post(
        f"{base}/api/posts/{post_id}/publish",
        json={
            "userId": USER,
            "accountId": account_id,
            "immediatePublish": True,
            "overrideSchedule": False,
        },
        timeout=20,
    )
    assert published.status_code == 200, published.text
    assert published.json()["post"]["state"] == "POST_STATE_PUBLISHED"
    assert published.json()["queued"] is False

    metrics = http.get(f"{base}/api/posts/{post_id}/metrics", timeout=10)
    assert metrics.status_code == 200, metrics.text
    assert metrics.json()["postId"] == post_id
    analytics = http.get(f"{base}/api/posts/{post_id}/analytics", timeout=10)
    assert analytics.status_code == 200, analytics.text
    assert analytics.json()["postId"] == post_id
    stats = http.get(f"{base}/api/posts/{USER}/stats", timeout=10)
    assert stats.status_code == 200, stats.text
    by_state = {s["state"]: int(s["count"]) for s in stats.json()["postsByState"]}
    assert by_state.get("POST_STATE_PUBLISHED", 0) >= 1


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/api/posts/{post}/schedule", b'{"userId": "local-user", ', 400),
        ("POST", "/api/posts/{post}/schedule", b'{"userId": 5, "priority": []}', 400),
        ("POST", "/api/posts/{post}/schedule", b"", 400),
        ("GET", "/api/posts/local-user/scheduled?limit=abc", None, 400),
        ("GET", "/api/posts/local-user/scheduled?colour=red", None, 400),
        ("GET", "/api/nothing/here", None, 404),
        ("PUT", "/api/posts/{post}/schedule", b"{}", 404),
        ("POST", "/api/posts/{post}/publish", b'{"userId": "' + b"x" * 2_000_000 + b'"}', 413),
        ("POST", "/api/posts/not-a-uuid/schedule", b'{"userId": "local-user"}', 400),
        ("GET", "/api/posts/{other}/metrics", None, 404),
    ],
)
def test_bad_rest_input_is_a_4xx_with_a_json_body(
    service: ServiceProcess,
    http: requests.Session,
    account_id: str,
    method: str,
    path: str,
    body: bytes | None,
    status: int,
) -> None:
    post_id = _new_post(service, http, account_id, f"bad input {method} {path[:30]}")
    url = service.rest_url + path.format(
        post=post_id, other="9" * 8 + "-0000-4000-8000-" + "0" * 12
    )
    response = http.request(
        method, url, data=body, headers={"content-type": "application/json"}, timeout=20
    )
    assert response.status_code == status, response.text[:300]
    assert isinstance(response.json(), dict) and response.json().get("message")
    assert requests.get(service.rest_url + "/health", timeout=5).status_code == 200


def test_plain_grpc_through_envoys_port(service: ServiceProcess) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{service.http_port}") as channel:
        info = service_info_service_pb2_grpc.ServiceInfoServiceStub(channel)
        about = info.GetInfo(service_info_service_pb2.GetInfoRequest(), timeout=10)
    assert about.name == "post-management"


def test_the_readme_curl_examples_work_as_written(service: ServiceProcess) -> None:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- rest-examples -->\n```sh\n(.*?)```", readme, re.DOTALL)
    assert match, "README lost its REST examples"
    env = {
        **os.environ,
        "BASE": service.rest_url,
        "TOKEN": service.printed_token(),
        "NO_PROXY": "*",
    }
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", match.group(1)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert '"POST_STATE_SCHEDULED"' in result.stdout
    assert '"POST_STATE_CANCELLED"' in result.stdout
    assert '"POST_STATE_PUBLISHED"' in result.stdout
    assert '"status":"SERVING"' in result.stdout.replace(" ", "")
