"""PublishingService over gRPC."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import grpc
from xmp.posts.v1 import post_pb2, publishing_service_pb2, publishing_service_pb2_grpc

from post_management.domain.errors import InvalidArgument
from post_management.domain.limits import ensure_at_most
from post_management.domain.post import PostState
from post_management.domain.reasons import Reason
from post_management.entrypoints.grpc.edge import current_principal
from post_management.entrypoints.grpc.mapping import (
    checked_user_id,
    parse_uuid,
    post_state_from_proto,
    post_to_proto,
    required_user_id,
)
from post_management.services.publishing.commands import (
    DeadLetterQuery,
    PublishCommands,
    PublishRequest,
)

# Two states can be asked for; a few repeats are tolerated.
MAX_STATE_FILTERS = 4

Context = grpc.aio.ServicerContext[Any, Any]


class PublishingServicer(publishing_service_pb2_grpc.PublishingServiceServicer):
    def __init__(self, commands: PublishCommands) -> None:
        self._commands = commands

    async def PublishPost(
        self, request: publishing_service_pb2.PublishPostRequest, context: Context
    ) -> publishing_service_pb2.PublishPostResponse:
        command = PublishRequest(
            post_id=parse_uuid(request.post_id, "post_id"),
            user_id=required_user_id(request.user_id),
            account_id=parse_uuid(request.account_id, "account_id") if request.account_id else None,
            immediate=request.immediate_publish,
            override_schedule=request.override_schedule,
            request_id=request.request_id,
            deadline_in=_deadline_in(context),
        )
        post, queued = await self._commands.publish(current_principal(), command)
        return publishing_service_pb2.PublishPostResponse(post=post_to_proto(post), queued=queued)

    async def ListDeadLetters(
        self, request: publishing_service_pb2.ListDeadLettersRequest, context: Context
    ) -> publishing_service_pb2.ListDeadLettersResponse:
        filters = DeadLetterQuery(
            user_id=checked_user_id(request.user_id) if request.user_id else "",
            account_id=parse_uuid(request.account_id, "account_id") if request.account_id else None,
            states=_states(request.states),
            reason=request.reason,
        )
        page = await self._commands.list_dead_letters(
            current_principal(), filters, request.page_size, request.page_token
        )
        return publishing_service_pb2.ListDeadLettersResponse(
            posts=[post_to_proto(post) for post in page.items],
            next_page_token=page.next_page_token,
        )

    async def RequeueDeadLetter(
        self, request: publishing_service_pb2.RequeueDeadLetterRequest, context: Context
    ) -> post_pb2.Post:
        post_id = parse_uuid(request.post_id, "post_id")
        post = await self._commands.requeue(current_principal(), post_id)
        return post_to_proto(post)


def _states(values: Iterable[int]) -> tuple[PostState, ...]:
    """Each listed state, an unspecified or unknown one named by its index."""
    values = list(values)
    ensure_at_most(values, MAX_STATE_FILTERS, "states", "states")
    states = []
    for index, value in enumerate(values):
        state = post_state_from_proto(value, f"states[{index}]")
        if state is None:
            raise InvalidArgument.for_field(
                f"states[{index}]", "must be a state", reason=Reason.INVALID_STATE_FILTER
            )
        states.append(state)
    return tuple(states)


def _deadline_in(context: Context) -> timedelta | None:
    """What is left of the caller's deadline (None: it set none)."""
    remaining = context.time_remaining()
    return None if remaining is None else timedelta(seconds=remaining)
