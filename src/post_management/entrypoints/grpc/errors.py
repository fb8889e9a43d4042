"""Domain errors -> gRPC status with google.rpc ErrorInfo and BadRequest (AIP-193)."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from post_management.domain import errors
from post_management.domain.reasons import Reason

DOMAIN = "posts.xmp"

_CODES: dict[type[errors.DomainError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def status_code_for(error: errors.DomainError) -> grpc.StatusCode:
    for kind in type(error).__mro__:
        if kind in _CODES:
            return _CODES[kind]
    return grpc.StatusCode.FAILED_PRECONDITION


def _pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_status(error: errors.DomainError) -> grpc.Status:
    result: grpc.Status = rpc_status.to_status(to_rpc_status(error))
    return result


def to_rpc_status(error: errors.DomainError) -> status_pb2.Status:
    """The google.rpc.Status of an error, also used for per-item batch results."""
    code = status_code_for(error)
    details = [
        _pack(
            error_details_pb2.ErrorInfo(
                reason=error.reason, domain=DOMAIN, metadata=dict(error.metadata)
            )
        )
    ]
    if isinstance(error, errors.InvalidArgument) and error.violations:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description
                        )
                        for v in error.violations
                    ]
                )
            )
        )
    if isinstance(error, errors.FailedPrecondition) and error.violations:
        details.append(
            _pack(
                error_details_pb2.PreconditionFailure(
                    violations=[
                        error_details_pb2.PreconditionFailure.Violation(
                            type=v.type, subject=v.subject, description=v.description
                        )
                        for v in error.violations[: errors.MAX_FIELD_VIOLATIONS]
                    ]
                )
            )
        )
    return status_pb2.Status(code=code.value[0], message=error.message, details=details)


def internal_status() -> grpc.Status:
    """What a caller sees of an unexpected failure: no internals, no secrets."""
    status = status_pb2.Status(
        code=code_pb2.INTERNAL,
        message="internal error; it has been logged",
        details=[_pack(error_details_pb2.ErrorInfo(reason=Reason.INTERNAL, domain=DOMAIN))],
    )
    result: grpc.Status = rpc_status.to_status(status)
    return result


def stream_refused_status() -> grpc.Status:
    """A streaming method that is not public: the edge authenticates unary calls only."""
    status = status_pb2.Status(
        code=code_pb2.UNIMPLEMENTED,
        message="streaming methods are not served: only unary calls are authenticated",
        details=[
            _pack(error_details_pb2.ErrorInfo(reason=Reason.STREAMING_NOT_SERVED, domain=DOMAIN))
        ],
    )
    result: grpc.Status = rpc_status.to_status(status)
    return result


async def abort(context: grpc.aio.ServicerContext[Any, Any], status: grpc.Status) -> None:
    """End the call with `status` (grpc.aio raises AbortError), keeping the trailing
    metadata the call already has (the correlation id of telemetry.py): trailing
    metadata given to abort replaces what was set before."""
    await context.abort(
        status.code, status.details, (*status.trailing_metadata, *context.trailing_metadata())
    )
