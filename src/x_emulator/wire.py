"""X's wire shapes: error bodies, Authorization parsing, rate-limit headers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from x_emulator.ratelimit import Budget

PROBLEMS = "https://api.twitter.com/2/problems/"
DUPLICATE_DETAIL = "You are not allowed to create a Tweet with duplicate content."


def problem(
    status: int, title: str, detail: str, type_: str = "about:blank", **extra: Any
) -> web.Response:
    body: dict[str, Any] = {"title": title, "detail": detail, "type": type_, "status": status}
    body.update(extra)
    return web.json_response(body, status=status)


def unauthorized() -> web.Response:
    return problem(401, "Unauthorized", "Unauthorized")


def too_many_requests() -> web.Response:
    return problem(429, "Too Many Requests", "Too Many Requests")


def usage_capped(scope: str) -> web.Response:
    return problem(
        429,
        "UsageCapExceeded",
        f"Usage cap exceeded: Daily {scope} limit",
        PROBLEMS + "usage-capped",
    )


def suspended() -> web.Response:
    return problem(
        403,
        "Forbidden",
        "Your account is suspended and is not permitted to access this feature.",
        PROBLEMS + "user-suspended",
    )


def forbidden(detail: str) -> web.Response:
    return problem(403, "Forbidden", detail)


def invalid_request(message: str) -> web.Response:
    return problem(
        400,
        "Invalid Request",
        "One or more parameters to your request was invalid.",
        PROBLEMS + "invalid-request",
        errors=[{"message": message, "parameters": {}}],
    )


def not_found_error(resource_type: str, parameter: str, value: str) -> dict[str, Any]:
    """One entry of a 200 response's `errors` array for a missing resource."""
    noun = "tweet" if resource_type == "tweet" else resource_type
    return {
        "value": value,
        "detail": f"Could not find {noun} with {parameter}: [{value}].",
        "title": "Not Found Error",
        "resource_type": resource_type,
        "parameter": parameter,
        "resource_id": value,
        "type": PROBLEMS + "resource-not-found",
    }


@dataclass(frozen=True)
class Caller:
    """Who is calling: a user (OAuth 1.0a access token) or the app (Bearer)."""

    token: str | None  # the oauth_token; None for app-only Bearer auth

    @property
    def is_user(self) -> bool:
        return self.token is not None


_OAUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')


def parse_authorization(header: str | None) -> Caller | None:
    """The caller, or None when the header is missing or unusable.

    Signatures are not verified: the emulator only needs to know who posts.
    """
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return Caller(token=None) if rest.strip() and rest.strip() != "None" else None
    if scheme.lower() == "oauth":
        params = {k: unquote(v) for k, v in _OAUTH_PARAM.findall(rest)}
        token = params.get("oauth_token")
        if token and params.get("oauth_consumer_key"):
            return Caller(token=token)
    return None


def set_budget_headers(response: web.StreamResponse, prefix: str, budget: Budget) -> None:
    response.headers[f"{prefix}-limit"] = str(budget.limit)
    response.headers[f"{prefix}-remaining"] = str(budget.remaining)
    response.headers[f"{prefix}-reset"] = str(budget.reset)


def weighted_length(text: str) -> int:
    """X's weighted length, approximately: URLs count 23, wide characters 2."""
    urls = re.findall(r"https?://\S+", text)
    rest = re.sub(r"https?://\S+", "", text)
    return 23 * len(urls) + sum(2 if ord(ch) > 0x10FF else 1 for ch in rest)
