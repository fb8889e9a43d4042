"""Every RPC of every xmp.posts.v1 service, called with another user's token on
alice's data, is PERMISSION_DENIED: over gRPC and over REST through a real Envoy.

The RPCs are enumerated from the descriptors: a new RPC without a case here fails
`test_every_rpc_has_a_case`. Public RPCs are the listed exceptions.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
import requests
from sqlalchemy import text
from xmp.posts.v1 import (
    account_pb2,
    campaign_pb2,
    campaign_service_pb2,
    campaign_service_pb2_grpc,
    post_service_pb2,
)

from post_management.adapters.db.engine import make_engine
from post_management.domain.auth import Role
from tests.conftest import truncate
from tests.fixtures.envoy import EnvoyFactory
from tests.integration.grpc_fixtures import Client
from tests.security.support import (
    NO_PROXY,
    all_methods,
    call_grpc,
    call_rest,
    method_named,
    request_for,
    rest_call,
)
from tests.support.harness import RunningServer, settings_for

# Public: X signs its webhooks (HMAC of the body); health, readiness and info are open.
PUBLIC = {
    "AnalyticsService.VerifyXWebhook",
    "AnalyticsService.ReceiveXWebhook",
    "ServiceInfoService.GetHealth",
    "ServiceInfoService.GetReadiness",
    "ServiceInfoService.GetInfo",
}
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


@dataclass(frozen=True)
class Victim:
    """Alice's data that bob tries to reach."""

    account_id: str
    post_id: str
    dead_letter_id: str
    missing_post_id: str
    campaign_id: str


Case = Callable[[Victim], dict[str, Any]]
LATER = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")

CASES: dict[str, list[Case]] = {
    "PostService.CreatePost": [
        lambda v: {"post": {"userId": "alice", "accountId": v.account_id, "text": "x"}},
    ],
    "PostService.GetPost": [lambda v: {"postId": v.post_id}],
    "PostService.ListPosts": [
        lambda v: {"userId": "alice"},
        lambda v: {"accountId": v.account_id},
    ],
    "PostService.UpdatePost": [lambda v: {"post": {"id": v.post_id, "text": "mine now"}}],
    "PostService.DeletePost": [lambda v: {"postId": v.post_id}],
    "PostService.UploadMedia": [
        lambda v: {"userId": "alice", "mimeType": "image/png", "data": PNG},
    ],
    "PostSchedulingService.SchedulePost": [
        lambda v: {"postId": v.post_id, "userId": "alice", "scheduledFor": LATER},
        # The user id is checked before the post's existence.
        lambda v: {"postId": v.missing_post_id, "userId": "alice", "scheduledFor": LATER},
        lambda v: {"postId": v.post_id, "userId": "bob", "scheduledFor": LATER},
    ],
    "PostSchedulingService.ListScheduledPosts": [
        lambda v: {"userId": "alice"},
        lambda v: {"userId": "bob", "accountId": v.account_id},
    ],
    "PostSchedulingService.CancelSchedule": [
        lambda v: {"postId": v.post_id, "userId": "alice"},
        lambda v: {"postId": v.missing_post_id, "userId": "alice"},
        lambda v: {"postId": v.post_id, "userId": "bob"},
    ],
    "PostSchedulingService.BatchSchedulePosts": [
        lambda v: {
            "userId": "alice",
            "requests": [{"postId": v.post_id, "userId": "alice", "scheduledFor": LATER}],
        },
    ],
    "PostSchedulingService.ListFreeSlots": [
        lambda v: {"accountId": v.account_id, "userId": "alice"},
        lambda v: {"accountId": v.account_id, "userId": "bob"},
    ],
    "PublishingService.PublishPost": [
        lambda v: {"postId": v.post_id, "userId": "alice"},
        lambda v: {"postId": v.missing_post_id, "userId": "alice"},
        lambda v: {"postId": v.post_id, "userId": "bob"},
    ],
    "PublishingService.ListDeadLetters": [
        lambda v: {"userId": "alice"},
        lambda v: {"accountId": v.account_id},
    ],
    "PublishingService.RequeueDeadLetter": [lambda v: {"postId": v.dead_letter_id}],
    "AnalyticsService.GetPostMetrics": [lambda v: {"postId": v.post_id}],
    "AnalyticsService.GetPostAnalytics": [lambda v: {"postId": v.post_id}],
    "AnalyticsService.GetUserStats": [lambda v: {"userId": "alice"}],
    "AnalyticsService.GetOptimalTimes": [lambda v: {"accountId": v.account_id}],
    "AnalyticsService.GetAccountGrowth": [lambda v: {"accountId": v.account_id}],
    "AnalyticsService.GetXSpend": [
        lambda v: {"accountId": v.account_id},
        lambda v: {"userId": "alice"},
        lambda v: {"campaignId": v.campaign_id},
    ],
    "AnalyticsService.GetAudienceActivity": [lambda v: {"accountId": v.account_id}],
    "AnalyticsService.PredictEngagement": [lambda v: {"accountId": v.account_id, "text": "x"}],
    "CampaignService.CreateCampaign": [
        lambda v: {"campaign": {"userId": "alice", "name": "bob's idea"}},
    ],
    "CampaignService.GetCampaign": [lambda v: {"campaignId": v.campaign_id}],
    "CampaignService.ListCampaigns": [lambda v: {"userId": "alice"}],
    "CampaignService.GetCampaignAnalytics": [lambda v: {"campaignId": v.campaign_id}],
    "AccountService.CreateAccount": [
        lambda v: {"account": {"userId": "alice", "handle": "taken", "xUserId": "4242"}},
    ],
    "AccountService.GetAccount": [lambda v: {"accountId": v.account_id}],
    "AccountService.ListAccounts": [lambda v: {"userId": "alice"}],
    "AccountService.UpdateAccount": [lambda v: {"account": {"id": v.account_id, "handle": "b"}}],
    "AccountService.DeleteAccount": [lambda v: {"accountId": v.account_id}],
    "AccountService.ResumeAccount": [lambda v: {"accountId": v.account_id}],
    "AccountService.ListAuditEvents": [lambda v: {"userId": "alice"}],
    "AccountService.ExportUserData": [lambda v: {"userId": "alice"}],
    "AccountService.EraseUserData": [lambda v: {"userId": "alice", "deleteFromX": True}],
}

WALK = [(name, index) for name, cases in CASES.items() for index in range(len(cases))]


@pytest.fixture(scope="module")
def server(
    machine_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    running = RunningServer(settings_for(machine_database, tmp_path_factory.mktemp("data")))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def victim(server: RunningServer) -> Victim:
    url = server.database_url
    truncate(url)
    alice = Client(server, "alice")
    account = alice.create_account(
        "1001",
        credentials=account_pb2.XCredentials(access_token="a", access_token_secret="b"),
    )
    post = alice.create_post(account.id, "alice's words")
    dead = alice.create_post(account.id, "alice's dead letter")
    campaign = campaign_service_pb2_grpc.CampaignServiceStub(alice.channel).CreateCampaign(
        campaign_service_pb2.CreateCampaignRequest(
            campaign=campaign_pb2.Campaign(user_id="alice", name="alice's launch")
        ),
        metadata=alice.metadata,
    )
    alice.channel.close()
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE posts SET state = 'DEAD_LETTERED' WHERE id = :id"), {"id": dead.id}
        )
    engine.dispose()
    return Victim(account.id, post.id, dead.id, str(uuid.uuid4()), campaign.id)


@pytest.fixture(scope="module")
def bob_token(server: RunningServer) -> str:
    return server.token("bob", Role.USER)


@pytest.fixture(scope="module")
def channel(server: RunningServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address, options=NO_PROXY) as opened:
        yield opened


@pytest.fixture(scope="module")
def rest_base(server: RunningServer, envoy_factory: EnvoyFactory) -> str:
    return envoy_factory(grpc_port=server.server.port).base_url


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False  # loopback only
        yield session


def test_every_rpc_has_a_case() -> None:
    names = {f"{m.containing_service.name}.{m.name}" for m in all_methods()}
    assert names - PUBLIC - set(CASES) == set(), "RPCs without an authorization case"
    assert set(CASES) | PUBLIC <= names, "cases for RPCs that no longer exist"


@pytest.mark.parametrize(("rpc", "index"), WALK, ids=[f"{n}-{i}" for n, i in WALK])
def test_foreign_user_is_denied_over_grpc(
    rpc: str, index: int, victim: Victim, bob_token: str, channel: grpc.Channel
) -> None:
    method = method_named(rpc)
    request = request_for(method, CASES[rpc][index](victim))
    code, _ = call_grpc(channel, method, request, bob_token)
    assert code == grpc.StatusCode.PERMISSION_DENIED, (rpc, request)


@pytest.mark.parametrize(("rpc", "index"), WALK, ids=[f"{n}-{i}" for n, i in WALK])
def test_foreign_user_is_denied_over_rest(
    rpc: str,
    index: int,
    victim: Victim,
    bob_token: str,
    rest_base: str,
    http: requests.Session,
) -> None:
    method = method_named(rpc)
    call = rest_call(method, request_for(method, CASES[rpc][index](victim)))
    response = call_rest(http, rest_base, call, bob_token)
    assert response.status_code == 403, (rpc, call, response.status_code, response.text)


def test_alice_data_is_untouched(victim: Victim, server: RunningServer) -> None:
    alice = Client(server, "alice")
    post = alice.posts.GetPost(
        post_service_pb2.GetPostRequest(post_id=victim.post_id), metadata=alice.metadata
    )
    assert post.text == "alice's words"
    alice.channel.close()
