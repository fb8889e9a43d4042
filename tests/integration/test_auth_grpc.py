"""Every protected RPC needs a valid bearer token; public ones do not."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import grpc
import jwt
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from xmp.posts.v1 import (
    post_pb2,
    post_service_pb2,
    post_service_pb2_grpc,
    scheduling_service_pb2,
    scheduling_service_pb2_grpc,
    service_info_service_pb2,
    service_info_service_pb2_grpc,
)

from post_management.domain.auth import Role
from tests.integration.grpc_fixtures import Client, error_details
from tests.support.harness import JWT_SECRET, RunningServer, auth


def _token(**claims: object) -> str:
    now = datetime.now(UTC)
    base: dict[str, object] = {
        "sub": "alice",
        "role": "user",
        "iss": "post-management",
        "aud": "post-management",
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, JWT_SECRET)


BAD_METADATA = {
    "missing": (),
    "not bearer": (("authorization", "Basic YWxpY2U6cHc="),),
    "garbage": auth("not-a-jwt"),
    "expired": auth(_token(exp=datetime.now(UTC) - timedelta(minutes=5))),
    "wrong audience": auth(_token(aud="someone-else")),
    "wrong issuer": auth(_token(iss="someone-else")),
    "no expiry": auth(_token(exp=None)),
    "wrong secret": auth(jwt.encode({"sub": "alice", "aud": "post-management"}, "x" * 40)),
    "unknown role": auth(_token(role="root")),
    "alg none": auth(jwt.encode({"sub": "alice"}, None, algorithm="none")),
    # The audit log's actor column holds "<role>:<subject>" in 128 characters.
    "subject too long": auth(_token(sub="a" * 101)),
}


@pytest.mark.parametrize("case", sorted(BAD_METADATA))
def test_bad_or_missing_token_is_unauthenticated(clean: RunningServer, case: str) -> None:
    with clean.channel() as channel:
        stub = post_service_pb2_grpc.PostServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ListPosts(post_service_pb2.ListPostsRequest(), metadata=BAD_METADATA[case])
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    reason, _ = error_details(caught.value)
    assert reason.startswith("TOKEN_")
    assert "not-a-jwt" not in (caught.value.details() or "")


def test_scheduling_methods_need_a_token_too(clean: RunningServer) -> None:
    with clean.channel() as channel:
        stub = scheduling_service_pb2_grpc.PostSchedulingServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ListScheduledPosts(
                scheduling_service_pb2.ListScheduledPostsRequest(user_id="alice")
            )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_service_role_acts_for_any_user(alice: Client, clean: RunningServer) -> None:
    account = alice.create_account()
    service = Client(clean, "billing-service", Role.SERVICE)
    created = service.posts.CreatePost(
        post_service_pb2.CreatePostRequest(
            post=post_pb2.Post(user_id="alice", account_id=account.id, text="on behalf")
        ),
        metadata=service.metadata,
    )
    assert created.user_id == "alice"
    listed = service.posts.ListPosts(
        post_service_pb2.ListPostsRequest(user_id="alice"), metadata=service.metadata
    )
    assert [p.id for p in listed.posts] == [created.id]


def test_health_reflection_and_info_need_no_token(clean: RunningServer) -> None:
    with clean.channel() as channel:
        health = health_pb2_grpc.HealthStub(channel)
        overall = health.Check(health_pb2.HealthCheckRequest(service=""))
        assert overall.status == health_pb2.HealthCheckResponse.SERVING
        per_service = health.Check(
            health_pb2.HealthCheckRequest(service="xmp.posts.v1.PostService")
        )
        assert per_service.status == health_pb2.HealthCheckResponse.SERVING

        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = {s.name for r in responses for s in r.list_services_response.service}
        assert {
            "xmp.posts.v1.PostService",
            "xmp.posts.v1.PostSchedulingService",
            "xmp.posts.v1.PublishingService",
            "xmp.posts.v1.AnalyticsService",
            "xmp.posts.v1.AccountService",
            "xmp.posts.v1.CampaignService",
            "xmp.posts.v1.ServiceInfoService",
            "grpc.health.v1.Health",
        } <= names

        info = service_info_service_pb2_grpc.ServiceInfoServiceStub(channel)
        about = info.GetInfo(service_info_service_pb2.GetInfoRequest())
        assert about.name == "post-management" and about.version
        assert about.components["database"] == "external"
        ready = info.GetReadiness(service_info_service_pb2.GetReadinessRequest())
        assert ready.ready and ready.components[0].name == "database"


def test_two_concurrent_updates_with_one_etag_exactly_one_wins(alice: Client) -> None:
    account = alice.create_account()
    created = alice.create_post(account.id)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def update(text: str) -> None:
        barrier.wait()
        try:
            outcomes.append(
                alice.posts.UpdatePost(
                    post_service_pb2.UpdatePostRequest(
                        post=post_pb2.Post(id=created.id, text=text, etag=created.etag)
                    ),
                    metadata=alice.metadata,
                )
            )
        except grpc.RpcError as error:
            outcomes.append(error.code())

    for _ in range(5):  # repeat the race; every round must have exactly one winner
        outcomes.clear()
        current = alice.posts.GetPost(
            post_service_pb2.GetPostRequest(post_id=created.id), metadata=alice.metadata
        )
        created = current
        threads = [threading.Thread(target=update, args=(f"t{i}",)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        winners = [o for o in outcomes if isinstance(o, post_pb2.Post)]
        assert len(winners) == 1, outcomes
        assert [o for o in outcomes if not isinstance(o, post_pb2.Post)] == [
            grpc.StatusCode.ABORTED
        ]
