"""Per-caller request budgets: RESOURCE_EXHAUSTED with RetryInfo, per token subject,
never for public calls; counted in process, or in Redis (awaited on the serving loop)
when it is configured."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from xmp.posts.v1 import (
    post_service_pb2,
    post_service_pb2_grpc,
    service_info_service_pb2,
    service_info_service_pb2_grpc,
)

from post_management.adapters.rate_limit import AsyncRedisRateLimiter
from post_management.domain.auth import Role
from tests.support.harness import RunningServer, auth, settings_for

LIMIT = 3


@pytest.fixture(scope="module", params=["in_process", "redis"])
def server(
    request: pytest.FixtureRequest,
    machine_database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    redis = {"redis_url": "redis://127.0.0.1:6379/0"} if request.param == "redis" else {}
    settings = settings_for(
        machine_database,
        tmp_path_factory.mktemp("data"),
        rpc_rate_limit_per_minute=LIMIT,
        rpc_rate_limit_service_per_minute=LIMIT * 2,
        **redis,
    )
    running = RunningServer(settings)
    yield running
    running.stop()


def _list(server: RunningServer, channel: grpc.Channel, subject: str, role: Role) -> None:
    post_service_pb2_grpc.PostServiceStub(channel).ListPosts(
        post_service_pb2.ListPostsRequest(user_id=subject),
        metadata=auth(server.token(subject, role)),
        timeout=10,
    )


def test_budget_per_subject_with_retry_info(server: RunningServer) -> None:
    # Subjects of this run only: Redis keeps budgets across runs for their window.
    run = uuid.uuid4().hex[:8]
    carol, dave, crm = f"carol-{run}", f"dave-{run}", f"crm-{run}"
    with server.channel() as channel:
        for _ in range(LIMIT):
            _list(server, channel, carol, Role.USER)
        with pytest.raises(grpc.RpcError) as caught:
            _list(server, channel, carol, Role.USER)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        status = rpc_status.from_call(caught.value)
        assert status is not None
        retry = [d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
        assert retry, "no RetryInfo detail"
        info = error_details_pb2.RetryInfo()
        retry[0].Unpack(info)
        assert 1 <= info.retry_delay.seconds <= 60

        # Another subject has its own budget; services get a larger one.
        _list(server, channel, dave, Role.USER)
        for _ in range(LIMIT * 2):
            _list(server, channel, crm, Role.SERVICE)

        # Public calls are never limited.
        info_stub = service_info_service_pb2_grpc.ServiceInfoServiceStub(channel)
        for _ in range(LIMIT * 3):
            info_stub.GetHealth(service_info_service_pb2.GetHealthRequest(), timeout=10)
    limiter = server.container.services.rpc_limiter
    # Through Redis, not its in-process fallback, when Redis is configured.
    if server.settings.redis.redis_url is not None:
        assert isinstance(limiter, AsyncRedisRateLimiter) and not limiter.degraded
    else:
        assert not isinstance(limiter, AsyncRedisRateLimiter)
