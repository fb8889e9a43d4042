"""REST through the Envoy that `post-management serve` starts, against the real server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.support.process import ServiceProcess, rest_session, running_service


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    with running_service(
        {"LOG_LEVEL": "WARNING"}, Path(tmp_path_factory.mktemp("rest"))
    ) as process:
        yield process


@pytest.fixture(scope="module")
def session(service: ServiceProcess) -> Iterator[requests.Session]:
    with rest_session(service.printed_token()) as http:
        yield http


def test_health_ready_and_info(service: ServiceProcess) -> None:
    for path in ("/health", "/ready", "/info"):
        response = requests.get(service.rest_url + path, timeout=10)
        assert response.status_code == 200, (path, response.text)
    assert requests.get(service.rest_url + "/health", timeout=10).json() == {"status": "SERVING"}
    info = requests.get(service.rest_url + "/info", timeout=10).json()
    assert info["name"] == "post-management"
    assert info["components"]["database"] == "embedded"


def test_health_detail_reports_every_component(
    service: ServiceProcess, session: requests.Session
) -> None:
    base = service.rest_url
    later = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    account = session.post(
        f"{base}/v1/accounts",
        json={"userId": "local-user", "handle": "health", "xUserId": "777"},
        timeout=10,
    ).json()
    post = session.post(
        f"{base}/v1/posts",
        json={"userId": "local-user", "accountId": account["id"], "text": "queued"},
        timeout=10,
    ).json()
    scheduled = session.post(
        f"{base}/api/posts/{post['id']}/schedule",
        json={"userId": "local-user", "scheduledFor": later.isoformat()},
        timeout=10,
    )
    assert scheduled.status_code == 200, scheduled.text

    # The probe's answer stays plain; detail is asked for.
    assert requests.get(f"{base}/health", timeout=10).json() == {"status": "SERVING"}
    answer = requests.get(f"{base}/health?detail=true", timeout=10)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "SERVING"
    details = body["details"]
    assert details["database"] == {"name": "database", "ok": True, "detail": "embedded"}
    assert details["redis"]["name"] == "redis" and details["redis"]["ok"] is True
    relay = details["kafkaRelay"]
    # No Kafka here: the events of the writes above wait in the outbox.
    assert relay["configured"] is False and int(relay["backlog"]) >= 2
    assert relay["oldestUnsentAge"].endswith("s")
    x_api = details["xApi"]
    assert x_api["target"] == "emulator" and x_api["reachable"] is True
    assert x_api["lastError"] == ""
    queue = details["queue"]
    assert int(queue["scheduled"]) >= 1 and int(queue["due"]) == 0
    assert "oldestDueTime" not in queue
    # Only true and false are values of detail.
    assert requests.get(f"{base}/health?detail=maybe", timeout=10).status_code == 400


def test_content_policy_over_rest(service: ServiceProcess, session: requests.Session) -> None:
    base = service.rest_url
    account = session.post(
        f"{base}/v1/accounts",
        json={
            "userId": "local-user",
            "handle": "strict",
            "xUserId": "778",
            "postingRules": {"contentPolicy": "CONTENT_POLICY_REFUSE"},
        },
        timeout=10,
    ).json()
    assert account["postingRules"]["contentPolicy"] == "CONTENT_POLICY_REFUSE"
    stuffed = "#a1 #b2 #c3 #d4 #e5 #f6 #g7"
    refused = session.post(
        f"{base}/v1/posts",
        json={"userId": "local-user", "accountId": account["id"], "text": stuffed},
        timeout=10,
    )
    assert refused.status_code == 400, refused.text
    body = refused.json()
    assert body["code"] == 9  # FAILED_PRECONDITION
    by_type = {detail["@type"].rsplit("/", 1)[-1]: detail for detail in body["details"]}
    assert by_type["google.rpc.ErrorInfo"]["reason"] == "CONTENT_POLICY"
    (violation,) = by_type["google.rpc.PreconditionFailure"]["violations"]
    assert violation["type"] == "HASHTAG_STUFFING" and violation["subject"] == stuffed

    warned = session.post(
        f"{base}/v1/accounts",
        json={"userId": "local-user", "handle": "lenient", "xUserId": "779"},
        timeout=10,
    ).json()
    created = session.post(
        f"{base}/v1/posts",
        json={"userId": "local-user", "accountId": warned["id"], "text": stuffed},
        timeout=10,
    )
    assert created.status_code == 200, created.text
    (finding,) = created.json()["contentFindings"]
    assert finding["rule"] == "HASHTAG_STUFFING" and 0.5 <= finding["score"] <= 1


def test_post_crud_over_rest(service: ServiceProcess, session: requests.Session) -> None:
    base = service.rest_url
    account = session.post(
        f"{base}/v1/accounts",
        json={"userId": "local-user", "handle": "brand", "xUserId": "12345"},
        timeout=10,
    )
    assert account.status_code == 200, account.text
    account_id = account.json()["id"]
    created = session.post(
        f"{base}/v1/posts",
        json={"userId": "local-user", "accountId": account_id, "text": "Hello from REST"},
        timeout=10,
    )
    assert created.status_code == 200, created.text
    post = created.json()
    assert post["state"] == "POST_STATE_DRAFT" and post["text"] == "Hello from REST"

    fetched = session.get(f"{base}/v1/posts/{post['id']}", timeout=10)
    assert fetched.json()["id"] == post["id"]

    patched = session.patch(
        f"{base}/v1/posts/{post['id']}?updateMask=text",
        json={"text": "edited", "etag": post["etag"]},
        timeout=10,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["text"] == "edited"

    deleted = session.delete(f"{base}/v1/posts/{post['id']}", timeout=10)
    assert deleted.status_code == 200 and deleted.json() == {}
    assert session.get(f"{base}/v1/posts/{post['id']}", timeout=10).status_code == 404


def test_errors_are_json_with_status_mapping(
    service: ServiceProcess, session: requests.Session
) -> None:
    bad = session.get(f"{service.rest_url}/v1/posts/not-a-uuid", timeout=10)
    assert bad.status_code == 400
    body = bad.json()
    assert body["code"] == 3 and "post_id" in body["message"]
    kinds = {detail["@type"].rsplit("/", 1)[-1] for detail in body["details"]}
    assert kinds == {"google.rpc.ErrorInfo", "google.rpc.BadRequest"}

    anonymous = requests.get(f"{service.rest_url}/v1/posts", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.json()["details"][0]["reason"] == "TOKEN_MISSING"

    malformed = session.get(f"{service.rest_url}/api/posts/x/metrics", timeout=10)
    assert malformed.status_code == 400
    assert malformed.json()["code"] == 3  # INVALID_ARGUMENT: post_id is not a UUID
