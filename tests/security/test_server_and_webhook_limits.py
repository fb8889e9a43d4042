"""Limits of the gRPC server itself, over real sockets: calls served at once, the
receive limit (Envoy's largest body), the webhook budgets in the service, and the
webhook methods switched off when no consumer secret is set."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from xmp.posts.v1 import (
    analytics_service_pb2,
    analytics_service_pb2_grpc,
    post_service_pb2,
    post_service_pb2_grpc,
)

from tests.support.harness import RunningServer, auth, settings_for

KIB = 1024
WEBHOOK_LIMIT = 3
CREDENTIALS = {
    "twitter_consumer_key": "emulator-consumer-key",
    "twitter_consumer_secret": "webhook-limits-secret",
    "twitter_bearer_token": "emulator-bearer-token",
}
TIMEOUT_S = 10


@pytest.fixture(scope="module")
def limited(
    machine_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    settings = settings_for(
        machine_database,
        tmp_path_factory.mktemp("limited"),
        grpc_max_concurrent_rpcs=1,
        max_request_bytes=64 * KIB,
        max_upload_bytes=128 * KIB,
        webhook_rate_limit_per_minute=WEBHOOK_LIMIT,
        **CREDENTIALS,
    )
    running = RunningServer(settings)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def no_secret(
    machine_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    running = RunningServer(settings_for(machine_database, tmp_path_factory.mktemp("off")))
    yield running
    running.stop()


def health_check(channel: grpc.Channel) -> None:
    health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S)


def test_calls_beyond_the_concurrency_limit_are_refused_at_once(limited: RunningServer) -> None:
    requests: queue.Queue[reflection_pb2.ServerReflectionRequest | None] = queue.Queue()

    def pending() -> Iterator[reflection_pb2.ServerReflectionRequest]:
        while (item := requests.get()) is not None:
            yield item

    with limited.channel() as channel:
        stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            pending(), timeout=TIMEOUT_S
        )
        requests.put(reflection_pb2.ServerReflectionRequest(list_services=""))
        assert next(stream).list_services_response.service  # the stream is being served
        with pytest.raises(grpc.RpcError) as refused:
            health_check(channel)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        requests.put(None)  # the stream ends; its slot is free again
        assert list(stream) == []
        health_check(channel)


def upload(server: RunningServer, channel: grpc.Channel, size: int) -> grpc.StatusCode:
    request = post_service_pb2.UploadMediaRequest(
        user_id="alice", mime_type="image/png", data=b"\x00" * size
    )
    try:
        post_service_pb2_grpc.PostServiceStub(channel).UploadMedia(
            request, metadata=auth(server.token("alice")), timeout=TIMEOUT_S
        )
    except grpc.RpcError as error:
        return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_the_receive_limit_is_the_upload_limit(limited: RunningServer) -> None:
    with limited.channel() as channel:
        # Within the limit the upload is judged on its content (not a PNG).
        assert upload(limited, channel, 100 * KIB) == grpc.StatusCode.INVALID_ARGUMENT
        assert upload(limited, channel, 129 * KIB) == grpc.StatusCode.RESOURCE_EXHAUSTED


def _retry_seconds(error: grpc.RpcError) -> int:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return int(info.retry_delay.seconds)
    raise AssertionError("no RetryInfo")


def test_each_webhook_method_has_one_budget_for_all_callers(limited: RunningServer) -> None:
    with limited.channel() as channel:
        stub = analytics_service_pb2_grpc.AnalyticsServiceStub(channel)

        def verify() -> None:
            stub.VerifyXWebhook(
                analytics_service_pb2.VerifyXWebhookRequest(crc_token="abc"), timeout=TIMEOUT_S
            )

        def receive() -> grpc.StatusCode:
            request = analytics_service_pb2.ReceiveXWebhookRequest()
            request.body.data = b"{}"
            try:
                stub.ReceiveXWebhook(
                    request,
                    metadata=(("x-twitter-webhooks-signature", "sha256=forged"),),
                    timeout=TIMEOUT_S,
                )
            except grpc.RpcError as error:
                return error.code()  # type: ignore[no-any-return]
            return grpc.StatusCode.OK

        for _ in range(WEBHOOK_LIMIT):
            verify()
        with pytest.raises(grpc.RpcError) as refused:
            verify()
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert 1 <= _retry_seconds(refused.value) <= 60
        # Deliveries have their own budget; forged ones count against it too.
        assert [receive() for _ in range(WEBHOOK_LIMIT)] == [
            grpc.StatusCode.UNAUTHENTICATED
        ] * WEBHOOK_LIMIT
        assert receive() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_without_a_consumer_secret_the_webhook_methods_are_off(no_secret: RunningServer) -> None:
    with no_secret.channel() as channel:
        stub = analytics_service_pb2_grpc.AnalyticsServiceStub(channel)
        request = analytics_service_pb2.ReceiveXWebhookRequest()
        request.body.data = b"{}"
        calls = [
            lambda: stub.VerifyXWebhook(
                analytics_service_pb2.VerifyXWebhookRequest(crc_token="abc"), timeout=TIMEOUT_S
            ),
            lambda: stub.ReceiveXWebhook(
                request,
                metadata=(("x-twitter-webhooks-signature", "sha256=anything"),),
                timeout=TIMEOUT_S,
            ),
        ]
        for call in calls:
            with pytest.raises(grpc.RpcError) as refused:
                call()
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "TWITTER_CONSUMER_SECRET" in (refused.value.details() or "")
    assert no_secret.container.components["x_api"] == "emulator"
