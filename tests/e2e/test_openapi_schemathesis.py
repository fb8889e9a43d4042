"""docs/openapi.yaml against the running service through Envoy, by schemathesis: every
operation gets a few generated requests (valid ones and the coverage phase's edge
cases); no answer may be a 5xx, and each status code, content type and body must be
one the document describes, and a missing token must be refused with 401.

Not checked: that every schema-valid request is accepted. A valid-looking request can
still name an account or post that does not exist (404) or break a rule no schema
states (a post over 280 weighted characters, a time in the past: 400).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    missing_required_header,
    response_schema_conformance,
    status_code_conformance,
)

from post_management.domain.auth import Role
from post_management.entrypoints.grpc.tokens import TokenCodec
from tests.support.process import ServiceProcess, running_service

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    missing_required_header,
]
schema = schemathesis.openapi.from_path(DOCUMENT)
# The served process gets this secret, so the test can sign its own token (requests
# are generated before the service starts).
JWT_SECRET = secrets.token_urlsafe(32)
TOKEN = TokenCodec(
    JWT_SECRET,
    issuer="post-management",
    audience="post-management",
    max_lifetime=timedelta(hours=1),
).mint("local-user", Role.USER)


@schema.auth()
class BearerToken:
    """The token the served process printed for its local user."""

    def get(self, case: schemathesis.Case, context: Any) -> str:
        return TOKEN

    def set(self, case: schemathesis.Case, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    env = {
        "LOG_LEVEL": "WARNING",
        "X_MODE": "emulator",
        "JWT_SECRET": JWT_SECRET,
        "JWT_REFRESH_SECRET": secrets.token_urlsafe(32),
    }
    with running_service(env, Path(tmp_path_factory.mktemp("schemathesis"))) as process:
        yield process


@schema.parametrize()
@settings(
    max_examples=3,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_matches_its_document(case: schemathesis.Case, service: ServiceProcess) -> None:
    # Made-up headers go through too: Envoy drops names gRPC metadata cannot carry.
    case.call_and_validate(base_url=service.rest_url, checks=CHECKS)
