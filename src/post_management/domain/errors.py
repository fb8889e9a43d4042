"""The typed error tree of the domain and services.

Each error maps to exactly one gRPC status code at the edge
(entrypoints/grpc/errors.py); `reason` becomes google.rpc.ErrorInfo.reason and
`metadata` its metadata, so callers can branch on it without parsing messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from post_management.domain.reasons import Reason

# One error lists at most this many field violations, and its message is cut to
# this length: an error trailer stays small whatever the request held.
MAX_FIELD_VIOLATIONS = 20
MAX_MESSAGE_LENGTH = 1000


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request; becomes a google.rpc.BadRequest entry."""

    field: str
    description: str


@dataclass
class DomainError(Exception):
    message: str
    reason: str = Reason.DOMAIN_ERROR
    metadata: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


@dataclass
class InvalidArgument(DomainError):
    """The request itself is wrong (INVALID_ARGUMENT)."""

    reason: str = Reason.INVALID_ARGUMENT
    violations: list[FieldViolation] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.violations) > MAX_FIELD_VIOLATIONS:
            omitted = len(self.violations) - MAX_FIELD_VIOLATIONS
            self.violations = self.violations[:MAX_FIELD_VIOLATIONS]
            self.metadata = {**self.metadata, "violations_omitted": str(omitted)}
        if len(self.message) > MAX_MESSAGE_LENGTH:
            self.message = self.message[: MAX_MESSAGE_LENGTH - 1] + "\u2026"

    @classmethod
    def for_field(
        cls, field_name: str, description: str, reason: str = Reason.INVALID_FIELD
    ) -> InvalidArgument:
        return cls(
            message=f"{field_name}: {description}",
            reason=reason,
            violations=[FieldViolation(field_name, description)],
        )


@dataclass
class NotFound(DomainError):
    reason: str = Reason.NOT_FOUND


@dataclass
class AlreadyExists(DomainError):
    reason: str = Reason.ALREADY_EXISTS


@dataclass(frozen=True)
class PreconditionViolation:
    """One unmet condition; becomes a google.rpc.PreconditionFailure entry."""

    type: str
    subject: str
    description: str


@dataclass
class FailedPrecondition(DomainError):
    """The request is well formed but the resource's state forbids it."""

    reason: str = Reason.FAILED_PRECONDITION
    violations: list[PreconditionViolation] = field(default_factory=list)


@dataclass
class Aborted(DomainError):
    """A concurrent change won (etag mismatch, lost race); retry after re-reading."""

    reason: str = Reason.ABORTED

    @classmethod
    def concurrent_change(cls) -> Aborted:
        """Another change of the resource came first (a versioned write found another
        version)."""
        return cls(
            "a concurrent change won; read the resource again and retry",
            reason=Reason.CONCURRENT_MODIFICATION,
        )


@dataclass
class PermissionDenied(DomainError):
    reason: str = Reason.PERMISSION_DENIED


@dataclass
class Unauthenticated(DomainError):
    reason: str = Reason.UNAUTHENTICATED


@dataclass
class ResourceExhausted(DomainError):
    """A quota of the caller is used up (RESOURCE_EXHAUSTED); freeing some helps."""

    reason: str = Reason.RESOURCE_EXHAUSTED


@dataclass
class Unavailable(DomainError):
    """A dependency is down; the call may be retried."""

    reason: str = Reason.UNAVAILABLE
