"""The X API emulator's wire format, through plain HTTP clients."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any

import aiohttp
import pytest
import requests

from tests.fixtures.emulator import Emulator
from tests.support.ports import free_port
from x_emulator import EmulatorServer

CALL_TIMEOUT = 5.0


def oauth(who: str = "token-a") -> dict[str, str]:
    """An OAuth 1.0a user-context header; the emulator reads oauth_token only."""
    return {
        "Authorization": (
            f'OAuth oauth_consumer_key="ck", oauth_nonce="n", oauth_signature="s", '
            f'oauth_signature_method="HMAC-SHA1", oauth_timestamp="1", oauth_token="{who}", '
            f'oauth_version="1.0"'
        )
    }


BEARER = {"Authorization": "Bearer app-token"}


def post(emu: Emulator, text: str, who: str = "token-a", **body: Any) -> requests.Response:
    return requests.post(
        f"{emu.base_url}/2/tweets",
        json={"text": text, **body},
        headers=oauth(who),
        timeout=CALL_TIMEOUT,
    )


def lookup(emu: Emulator, ids: list[str], headers: dict[str, str], fields: str) -> Any:
    response = requests.get(
        f"{emu.base_url}/2/tweets",
        params={"ids": ",".join(ids), "tweet.fields": fields},
        headers=headers,
        timeout=CALL_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return response.json()


def me(emu: Emulator, token: str) -> dict[str, Any]:
    response = requests.get(f"{emu.base_url}/2/users/me", headers=oauth(token), timeout=5)
    assert response.status_code == 200
    data: dict[str, Any] = response.json()["data"]
    return data


# --- auth ---------------------------------------------------------------------


def test_requests_without_authorization_get_x_401(emulator: Emulator) -> None:
    for method, path in [("POST", "/2/tweets"), ("GET", "/2/tweets?ids=1"), ("GET", "/2/users/me")]:
        response = requests.request(
            method, emulator.base_url + path, json={"text": "x"}, timeout=CALL_TIMEOUT
        )
        assert response.status_code == 401
        assert response.json() == {
            "title": "Unauthorized",
            "detail": "Unauthorized",
            "type": "about:blank",
            "status": 401,
        }
    assert emulator.control.posts() == []


def test_bearer_may_read_but_not_post(emulator: Emulator) -> None:
    response = requests.post(
        f"{emulator.base_url}/2/tweets", json={"text": "x"}, headers=BEARER, timeout=5
    )
    assert response.status_code == 403
    assert response.json()["type"].endswith("problems/unsupported-authentication")
    created = post(emulator, "readable").json()["data"]["id"]
    body = lookup(emulator, [created], BEARER, "created_at")
    assert [d["id"] for d in body["data"]] == [created]


def test_unknown_tokens_become_distinct_users_and_registered_ones_keep_their_id(
    emulator: Emulator,
) -> None:
    first, second = me(emulator, "token-1"), me(emulator, "token-2")
    assert first["id"] != second["id"]
    assert me(emulator, "token-1") == first
    emulator.control.register_user("token-3", user_id="4242", username="brand")
    assert me(emulator, "token-3") == {"id": "4242", "name": "brand", "username": "brand"}


def test_revoked_token_gets_401(emulator: Emulator) -> None:
    assert post(emulator, "before").status_code == 201
    emulator.control.revoke("token-a")
    response = post(emulator, "after")
    assert response.status_code == 401
    assert response.json()["title"] == "Unauthorized"


# --- create -------------------------------------------------------------------


def test_create_post_answers_201_with_x_shape_and_stores_it(emulator: Emulator) -> None:
    response = post(emulator, "hello world")
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["text"] == "hello world"
    assert data["id"].isdigit()
    assert data["edit_history_tweet_ids"] == [data["id"]]
    stored = emulator.control.posts(text="hello world")
    assert [p["id"] for p in stored] == [data["id"]]


def test_duplicate_text_from_the_same_user_is_refused(emulator: Emulator) -> None:
    first = post(emulator, "same words")
    assert first.status_code == 201
    again = post(emulator, "same words")
    assert again.status_code == 403
    assert again.json()["detail"] == (
        "You are not allowed to create a Tweet with duplicate content."
    )
    assert post(emulator, "same words", who="token-b").status_code == 201
    requests.delete(
        f"{emulator.base_url}/2/tweets/{first.json()['data']['id']}",
        headers=oauth(),
        timeout=CALL_TIMEOUT,
    )
    assert post(emulator, "same words").status_code == 201
    assert len(emulator.control.posts(text="same words")) == 2


def test_suspended_user_gets_403_user_suspended(emulator: Emulator) -> None:
    user = me(emulator, "token-a")
    emulator.control.suspend(user["id"])
    response = post(emulator, "not allowed")
    assert response.status_code == 403
    assert response.json()["type"].endswith("problems/user-suspended")
    emulator.control.unsuspend(user["id"])
    assert post(emulator, "allowed again").status_code == 201
    assert [p["text"] for p in emulator.control.posts()] == ["allowed again"]


def test_invalid_bodies_get_400(emulator: Emulator) -> None:
    too_long = post(emulator, "x" * 281)
    assert too_long.status_code == 400
    assert too_long.json()["type"].endswith("problems/invalid-request")
    assert post(emulator, "").status_code == 400
    reply = post(emulator, "reply", reply={"in_reply_to_tweet_id": "123"})
    assert reply.status_code == 403
    assert emulator.control.posts() == []


# --- rate limits ----------------------------------------------------------------


def test_rate_limit_headers_count_down_then_429_until_reset(emulator: Emulator) -> None:
    emulator.control.set_limits(user_posts_per_window=3)
    remaining = []
    for i in range(3):
        response = post(emulator, f"post {i}")
        assert response.status_code == 201
        assert response.headers["x-rate-limit-limit"] == "3"
        assert response.headers["x-user-limit-24hour-limit"] == "2400"
        assert response.headers["x-app-limit-24hour-limit"] == "10000"
        remaining.append(int(response.headers["x-rate-limit-remaining"]))
    assert remaining == [2, 1, 0]
    refused = post(emulator, "one too many")
    assert refused.status_code == 429
    assert refused.json()["title"] == "Too Many Requests"
    assert refused.headers["x-rate-limit-remaining"] == "0"
    reset = int(refused.headers["x-rate-limit-reset"])
    assert 0 < reset - time.time() <= 15 * 60 + 1
    # another user has a budget of their own
    assert post(emulator, "someone else", who="token-b").status_code == 201
    emulator.control.advance_clock(15 * 60 + 1)
    accepted = post(emulator, "after reset")
    assert accepted.status_code == 201
    assert accepted.headers["x-rate-limit-remaining"] == "2"
    assert len(emulator.control.posts()) == 5


def test_app_daily_cap_spans_users(emulator: Emulator) -> None:
    emulator.control.set_limits(app_posts_per_day=2)
    assert post(emulator, "a", who="t1").status_code == 201
    assert post(emulator, "b", who="t2").status_code == 201
    refused = post(emulator, "c", who="t3")
    assert refused.status_code == 429
    assert refused.json()["type"].endswith("problems/usage-capped")
    assert refused.headers["x-app-limit-24hour-remaining"] == "0"
    assert refused.headers["x-rate-limit-remaining"] == "100"  # the 15-minute budget is intact


def test_read_endpoints_report_their_own_limits(emulator: Emulator) -> None:
    response = requests.get(
        f"{emulator.base_url}/2/tweets?ids=1", headers=oauth(), timeout=CALL_TIMEOUT
    )
    assert response.headers["x-rate-limit-limit"] == "5000"
    assert response.headers["x-rate-limit-remaining"] == "4999"


async def test_concurrent_posts_over_aiohttp_respect_the_budget(emulator: Emulator) -> None:
    emulator.control.set_limits(user_posts_per_window=5)
    timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(i: int) -> int:
            async with session.post(
                f"{emulator.base_url}/2/tweets", json={"text": f"burst {i}"}, headers=oauth()
            ) as response:
                await response.read()
                return response.status

        statuses = await asyncio.gather(*(one(i) for i in range(12)))
    assert sorted(statuses) == [201] * 5 + [429] * 7
    assert len(emulator.control.posts()) == 5


# --- reads and metrics ----------------------------------------------------------


def test_lookup_reports_deleted_and_unknown_ids_as_not_found_errors(emulator: Emulator) -> None:
    kept = post(emulator, "kept").json()["data"]["id"]
    gone = post(emulator, "gone").json()["data"]["id"]
    deleted = requests.delete(f"{emulator.base_url}/2/tweets/{gone}", headers=oauth(), timeout=5)
    assert deleted.json() == {"data": {"deleted": True}}
    body = lookup(emulator, [kept, gone, "42"], oauth(), "created_at")
    assert [d["id"] for d in body["data"]] == [kept]
    assert body["data"][0]["created_at"].endswith("Z")
    errors = {e["resource_id"]: e for e in body["errors"]}
    assert set(errors) == {gone, "42"}
    assert errors["42"]["title"] == "Not Found Error"
    assert errors["42"]["type"] == "https://api.twitter.com/2/problems/resource-not-found"
    assert errors["42"]["parameter"] == "ids"
    too_many = requests.get(
        f"{emulator.base_url}/2/tweets",
        params={"ids": ",".join(str(i) for i in range(1, 102))},
        headers=oauth(),
        timeout=CALL_TIMEOUT,
    )
    assert too_many.status_code == 400


def test_metrics_grow_with_age_and_private_ones_are_for_the_author(emulator: Emulator) -> None:
    post_id = post(emulator, "growing").json()["data"]["id"]
    fields = "public_metrics,non_public_metrics,organic_metrics,created_at"

    def impressions() -> tuple[int, int]:
        data = lookup(emulator, [post_id], oauth(), fields)["data"][0]
        assert (
            data["non_public_metrics"]["impression_count"]
            == (data["public_metrics"]["impression_count"])
        )
        assert "organic_metrics" in data
        return data["public_metrics"]["impression_count"], data["public_metrics"]["like_count"]

    seen = [impressions()]
    for _ in range(3):
        emulator.control.advance_clock(20 * 60)
        seen.append(impressions())
    views = [v for v, _ in seen]
    likes = [lk for _, lk in seen]
    assert views[0] < views[1] < views[2] < views[3]
    assert likes == sorted(likes)
    # Same clock, same numbers: the emulator's clock runs on between two calls, so
    # the post is asked for twice in one call.
    twice = lookup(emulator, [post_id, post_id], oauth(), fields)["data"]
    assert len(twice) == 2 and twice[0]["public_metrics"] == twice[1]["public_metrics"]

    # The app sees the public counts the author sees at the same moment: between the
    # author's reads just before and just after (the clock runs on between calls).
    before = impressions()[0]
    as_app = lookup(emulator, [post_id], BEARER, fields)
    after = impressions()[0]
    assert "non_public_metrics" not in as_app["data"][0]
    assert before <= as_app["data"][0]["public_metrics"]["impression_count"] <= after
    assert {e["field"] for e in as_app["errors"]} == {"non_public_metrics", "organic_metrics"}
    assert {e["title"] for e in as_app["errors"]} == {"Field Authorization Error"}
    emulator.control.advance_clock(86400)  # a day on, every post has reached 200+ views
    assert impressions()[1] > 0


def test_user_timeline_filters_and_paginates(emulator: Emulator) -> None:
    user = me(emulator, "token-a")
    old = emulator.control.seed_post(user["id"], "from last week", age_seconds=7 * 86400)
    ids = [post(emulator, f"recent {i}").json()["data"]["id"] for i in range(7)]
    post(emulator, "another user", who="token-b")
    url = f"{emulator.base_url}/2/users/{user['id']}/tweets"
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    params = {"start_time": start, "max_results": "5", "tweet.fields": "created_at"}
    first = requests.get(url, params=params, headers=oauth(), timeout=5).json()
    assert [d["id"] for d in first["data"]] == ids[::-1][:5]
    assert first["meta"]["result_count"] == 5
    params["pagination_token"] = first["meta"]["next_token"]
    second = requests.get(url, params=params, headers=oauth(), timeout=5).json()
    assert [d["id"] for d in second["data"]] == ids[::-1][5:]
    assert "next_token" not in second["meta"]
    everything = requests.get(
        url, params={"max_results": "100"}, headers=BEARER, timeout=CALL_TIMEOUT
    ).json()
    assert everything["data"][-1]["id"] == old["id"]
    newer = requests.get(
        url, params={"since_id": ids[4]}, headers=oauth(), timeout=CALL_TIMEOUT
    ).json()
    assert [d["id"] for d in newer["data"]] == [ids[6], ids[5]]


# --- media --------------------------------------------------------------------


def test_simple_media_upload_is_usable_at_once(emulator: Emulator) -> None:
    response = requests.post(
        f"{emulator.base_url}/1.1/media/upload.json",
        files={"media": ("a.png", b"\x89PNG\r\n" + b"0" * 64)},
        headers=oauth(),
        timeout=CALL_TIMEOUT,
    )
    assert response.status_code == 200
    media_id = response.json()["media_id_string"]
    assert response.json()["media_id"] == int(media_id)
    created = post(emulator, "", media={"media_ids": [media_id]})
    assert created.status_code == 201
    assert emulator.control.posts()[0]["media_ids"] == [media_id]
    assert post(emulator, "bad media", media={"media_ids": ["123"]}).status_code == 400


def test_chunked_media_flow_with_processing(emulator: Emulator) -> None:
    emulator.control.set_limits(media_processing_seconds=60)
    url = f"{emulator.base_url}/1.1/media/upload.json"
    chunks = [b"a" * 1000, b"b" * 500]

    def command(data: dict[str, str], files: Any = None) -> requests.Response:
        return requests.post(url, data=data, files=files, headers=oauth(), timeout=CALL_TIMEOUT)

    init = command({"command": "INIT", "total_bytes": "1500", "media_type": "video/mp4"})
    assert init.status_code == 202
    media_id = init.json()["media_id_string"]
    for index, chunk in enumerate(chunks):
        appended = command(
            {"command": "APPEND", "media_id": media_id, "segment_index": str(index)},
            files={"media": ("blob", chunk)},
        )
        assert appended.status_code == 204
    finalized = command({"command": "FINALIZE", "media_id": media_id})
    assert finalized.status_code == 201
    assert finalized.json()["processing_info"]["state"] == "pending"
    assert finalized.json()["processing_info"]["check_after_secs"] >= 1

    def status() -> dict[str, Any]:
        response = requests.get(
            url, params={"command": "STATUS", "media_id": media_id}, headers=oauth(), timeout=5
        )
        assert response.status_code == 200
        info: dict[str, Any] = response.json()["processing_info"]
        return info

    assert post(emulator, "too soon", media={"media_ids": [media_id]}).status_code == 400
    emulator.control.advance_clock(30)
    assert status()["state"] == "in_progress"
    emulator.control.advance_clock(31)
    assert status()["state"] == "succeeded"
    assert post(emulator, "video", media={"media_ids": [media_id]}).status_code == 201
    counters = emulator.control.counters()
    assert counters["POST /1.1/media/upload.json command=APPEND"] == 2
    assert counters["GET /1.1/media/upload.json command=STATUS"] == 2


def test_chunked_finalize_checks_the_byte_count(emulator: Emulator) -> None:
    url = f"{emulator.base_url}/1.1/media/upload.json"
    init = requests.post(
        url,
        data={"command": "INIT", "total_bytes": "10", "media_type": "image/png"},
        headers=oauth(),
        timeout=CALL_TIMEOUT,
    ).json()
    finalize = requests.post(
        url,
        data={"command": "FINALIZE", "media_id": init["media_id_string"]},
        headers=oauth(),
        timeout=CALL_TIMEOUT,
    )
    assert finalize.status_code == 400
    assert "Segments do not add up" in finalize.json()["errors"][0]["message"]


# --- control API: faults and counters -------------------------------------------


def test_status_fault_answers_without_acting_for_n_requests(emulator: Emulator) -> None:
    emulator.control.inject_fault("POST", "/2/tweets", "status", status=503, count=2)
    assert post(emulator, "one").status_code == 503
    assert post(emulator, "two").status_code == 503
    assert post(emulator, "three").status_code == 201
    assert [p["text"] for p in emulator.control.posts()] == ["three"]
    assert emulator.control.counters()["POST /2/tweets"] == 3


def test_status_fault_with_accept_stores_then_fails(emulator: Emulator) -> None:
    emulator.control.inject_fault("POST", "/2/tweets", "status", status=500, accept=True)
    assert post(emulator, "stored anyway").status_code == 500
    assert len(emulator.control.posts(text="stored anyway")) == 1


def test_fault_matches_method_and_path_pattern(emulator: Emulator) -> None:
    emulator.control.inject_fault("DELETE", "/2/tweets/*", "status", status=502)
    post_id = post(emulator, "survives").json()["data"]["id"]  # POST is not matched
    url = f"{emulator.base_url}/2/tweets/{post_id}"
    assert requests.delete(url, headers=oauth(), timeout=5).status_code == 502
    assert requests.delete(url, headers=oauth(), timeout=5).status_code == 200


def test_delay_fault_slows_the_answer(emulator: Emulator) -> None:
    emulator.control.inject_fault("POST", "/2/tweets", "delay", delay_seconds=0.4)
    started = time.monotonic()
    assert post(emulator, "slow").status_code == 201
    assert time.monotonic() - started >= 0.4


def test_timeout_fault_hangs_until_the_client_gives_up(emulator: Emulator) -> None:
    emulator.control.inject_fault("POST", "/2/tweets", "timeout")
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        requests.post(
            f"{emulator.base_url}/2/tweets", json={"text": "hang"}, headers=oauth(), timeout=0.3
        )
    assert time.monotonic() - started < 2
    assert emulator.control.posts() == []
    assert post(emulator, "next one is fine").status_code == 201


def test_accept_then_drop_stores_the_post_but_the_client_sees_a_connection_error(
    emulator: Emulator,
) -> None:
    emulator.control.inject_fault("POST", "/2/tweets", "accept_then_drop")
    with pytest.raises(requests.ConnectionError):
        post(emulator, "lost answer")
    assert len(emulator.control.posts(text="lost answer")) == 1


def test_reset_clears_posts_faults_limits_and_counters(emulator: Emulator) -> None:
    post(emulator, "x")
    emulator.control.set_limits(user_posts_per_window=1)
    emulator.control.inject_fault("GET", "/2/users/me", "status", status=500)
    emulator.control.reset()
    assert emulator.control.posts() == []
    assert emulator.control.counters() == {}
    assert me(emulator, "token-a")["id"]
    assert post(emulator, "x").status_code == 201
    assert post(emulator, "y").status_code == 201


# --- running it -------------------------------------------------------------------


async def test_emulator_server_runs_on_the_callers_loop() -> None:
    server = EmulatorServer()
    base_url = await server.start("127.0.0.1", 0)
    try:
        timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(
                f"{base_url}/2/tweets", json={"text": "in loop"}, headers=oauth()
            ) as response,
        ):
            assert response.status == 201
        assert [p.text for p in server.state.posts.values()] == ["in loop"]
    finally:
        await server.stop()


def test_module_entry_point_serves_on_the_given_port() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "x_emulator", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/_emulator/clock", timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stdout and process.stdout.read()
                assert time.monotonic() < deadline, "emulator did not start"
                time.sleep(0.05)
        assert response.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0
