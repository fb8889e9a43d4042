"""HS256 access tokens: minted by the CLI, verified on every protected call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

import jwt

from post_management.domain.auth import Principal, Role
from post_management.domain.errors import Unauthenticated
from post_management.domain.reasons import Reason

LEEWAY = timedelta(seconds=30)
# The audit log records "<role>:<subject>" in 128 characters.
MAX_SUBJECT_LENGTH = 100
# TOKEN_MAX_LIFETIME_MINUTES' default: a day.
DEFAULT_MAX_LIFETIME = timedelta(days=1)


class TokenVerifier(Protocol):
    def verify(self, token: str) -> Principal: ...


class TokenCodec:
    def __init__(
        self,
        secret: str,
        *,
        issuer: str,
        audience: str,
        max_lifetime: timedelta = DEFAULT_MAX_LIFETIME,
    ) -> None:
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self.max_lifetime = max_lifetime

    def mint(self, subject: str, role: Role, ttl: timedelta = timedelta(hours=1)) -> str:
        now = datetime.now(UTC)
        claims = {
            "sub": subject,
            "role": role.value,
            "iss": self._issuer,
            "aud": self._audience,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> Principal:
        return self.verify_until(token)[0]

    def verify_until(self, token: str) -> tuple[Principal, float]:
        """The caller, and the token's expiry (`exp`, seconds since the epoch)."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
            role = Role(claims.get("role", Role.USER.value))
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired", reason=Reason.TOKEN_EXPIRED) from None
        except (jwt.InvalidTokenError, ValueError):
            # Never echo the token: it may be a real credential sent by mistake.
            raise Unauthenticated("the token is not valid", reason=Reason.TOKEN_INVALID) from None
        # Checked against the expiry, not "iat" (other issuers may leave it out): a
        # token that is still valid further ahead than the cap lives too long.
        expires = datetime.fromtimestamp(claims["exp"], UTC)
        if expires - datetime.now(UTC) > self.max_lifetime + LEEWAY:
            raise Unauthenticated(
                "the token lives longer than this service accepts",
                reason=Reason.TOKEN_TOO_LONG_LIVED,
            )
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise Unauthenticated("the token has no subject", reason=Reason.TOKEN_INVALID)
        if len(subject) > MAX_SUBJECT_LENGTH:
            raise Unauthenticated(
                f"the token's subject is longer than {MAX_SUBJECT_LENGTH} characters",
                reason=Reason.TOKEN_INVALID,
            )
        return Principal(subject=subject, role=role), float(claims["exp"])
