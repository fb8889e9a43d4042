"""Per-caller request budgets: RESOURCE_EXHAUSTED with google.rpc.RetryInfo.

Registered after the edge interceptor, so it runs once the caller is known (the
token's subject and role) and never for public calls (health, info, reflection),
except X's webhooks: they have no caller to count, so each webhook method has one
budget for everyone (Envoy's local rate limit sits in front of it). The budgets
live in the same limiter as X's budgets, through its awaited face: in Redis when
configured (over redis.asyncio, on the serving loop), so every replica counts against
one budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from post_management.domain.auth import Role
from post_management.domain.reasons import Reason
from post_management.entrypoints.grpc.edge import (
    PUBLIC_METHODS,
    PUBLIC_PREFIXES,
    WEBHOOK_METHODS,
    optional_principal,
)
from post_management.entrypoints.grpc.errors import DOMAIN, abort
from post_management.entrypoints.grpc.unary import Behavior, UnaryInterceptor
from post_management.ports.publishing import AsyncRateLimiter


@dataclass(frozen=True)
class RequestBudget:
    """Requests per window per token subject; 0 turns a role's limit off."""

    user_limit: int
    service_limit: int
    # Per webhook method, all callers together.
    webhook_limit: int = 0
    window: timedelta = timedelta(minutes=1)

    def limit_for(self, role: Role) -> int:
        return self.user_limit if role is Role.USER else self.service_limit


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def exhausted_status(retry_after: timedelta, limit: int, window: timedelta) -> grpc.Status:
    seconds = max(1, math.ceil(retry_after.total_seconds()))
    status = status_pb2.Status(
        code=code_pb2.RESOURCE_EXHAUSTED,
        message=f"too many requests; retry in {seconds} s",
        details=[
            _pack(
                error_details_pb2.ErrorInfo(
                    reason=Reason.RATE_LIMITED,
                    domain=DOMAIN,
                    metadata={"limit": str(limit), "window_seconds": str(int(window.seconds))},
                )
            ),
            _pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds))),
        ],
    )
    result: grpc.Status = rpc_status.to_status(status)
    return result


class RateLimitInterceptor(UnaryInterceptor):
    def __init__(
        self,
        limiter: AsyncRateLimiter,
        budget: RequestBudget,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__()
        self._limiter = limiter
        self._budget = budget
        self._now = now

    def wrap(self, behavior: Behavior, method: str) -> Behavior | None:
        if method in WEBHOOK_METHODS:
            if self._budget.webhook_limit <= 0:
                return None
            key = f"webhook:{method.rsplit('/', 1)[-1]}"
            return self._limited(behavior, lambda: (key, self._budget.webhook_limit))
        if method.startswith(PUBLIC_PREFIXES) or method in PUBLIC_METHODS:
            return None

        def caller() -> tuple[str, int] | None:
            principal = optional_principal()
            if principal is None:
                return None
            limit = self._budget.limit_for(principal.role)
            return f"rpc:{principal.role}:{principal.subject}", limit

        return self._limited(behavior, caller)

    def _limited(
        self, behavior: Behavior, budget: Callable[[], tuple[str, int] | None]
    ) -> Behavior:
        async def limited(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            found = budget()
            if found is not None and found[1] > 0:
                key, limit = found
                now = self._now()
                free_at = await self._limiter.acquire(key, limit, self._budget.window, now)
                if free_at is not None:
                    status = exhausted_status(free_at - now, limit, self._budget.window)
                    await abort(context, status)
            return await behavior(request, context)

        return limited
