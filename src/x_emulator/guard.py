"""Authentication and rate limiting shared by the X endpoints."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from x_emulator import wire
from x_emulator.ratelimit import Budget
from x_emulator.state import EmulatorState, User

STATE_KEY = web.AppKey("emulator_state", EmulatorState)
BUDGETS_KEY = web.RequestKey("emulator_budgets", list[tuple[str, Budget]])


@dataclass(frozen=True)
class Context:
    state: EmulatorState
    user: User | None  # None for app-only (Bearer) calls

    @property
    def principal(self) -> str:
        return f"user:{self.user.id}" if self.user else "app"


def state_of(request: web.Request) -> EmulatorState:
    return request.app[STATE_KEY]


def authorize(request: web.Request, *, user_only: bool) -> Context | web.Response:
    """The caller, or X's 401/403. Every route calls spend() right after."""
    state = state_of(request)
    caller = wire.parse_authorization(request.headers.get("Authorization"))
    if caller is None or (caller.token is not None and caller.token in state.revoked_tokens):
        return wire.unauthorized()
    if caller.token is None:
        if user_only:
            return wire.problem(
                403,
                "Unsupported Authentication",
                "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint."
                "  Supported authentication types are [OAuth 1.0a User Context,"
                " OAuth 2.0 User Context].",
                wire.PROBLEMS + "unsupported-authentication",
            )
        return Context(state, None)
    # A suspended user is refused in spend(), so the refusal carries rate-limit headers.
    return Context(state, state.user_for_token(caller.token))


@dataclass(frozen=True)
class Bucket:
    name: str  # budget key prefix, e.g. "lookup"
    header: str  # response header prefix, e.g. "x-rate-limit"
    limit: int
    period: float
    per_app: bool = False  # one budget for the whole app rather than per caller


def spend(request: web.Request, ctx: Context, buckets: list[Bucket]) -> web.Response | None:
    """Spend one request from every bucket, or none when any is spent (429) or the
    user is suspended (403).

    The buckets' state is recorded for the header middleware either way.
    """
    suspended = ctx.user is not None and ctx.user.suspended
    now = ctx.state.now()
    windows = ctx.state.windows
    keys = [f"{b.name}:{'app' if b.per_app else ctx.principal}" for b in buckets]
    spent = [
        b
        for b, key in zip(buckets, keys, strict=True)
        if windows.peek(key, b.limit, b.period, now).remaining <= 0
    ]
    if not spent and not suspended:
        for b, key in zip(buckets, keys, strict=True):
            windows.take(key, b.limit, b.period, now)
    request[BUDGETS_KEY] = [
        (b.header, windows.peek(key, b.limit, b.period, now))
        for b, key in zip(buckets, keys, strict=True)
    ]
    if suspended:
        return wire.suspended()
    if not spent:
        return None
    first = spent[0]
    if first.header == "x-rate-limit":
        return wire.too_many_requests()
    return wire.usage_capped("app" if first.per_app else "user")


def budgets_of(request: web.Request) -> list[tuple[str, Budget]]:
    budgets: list[tuple[str, Budget]] = request.get(BUDGETS_KEY, [])
    return budgets


def read_bucket(ctx: Context, name: str, limit: int) -> Bucket:
    return Bucket(name, "x-rate-limit", limit, ctx.state.limits.read_window_seconds)
