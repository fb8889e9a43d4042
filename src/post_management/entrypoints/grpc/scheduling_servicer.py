"""PostSchedulingService over gRPC: map, await the use case on the event loop, map back."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import grpc
from xmp.posts.v1 import (
    post_pb2,
    scheduling_service_pb2,
    scheduling_service_pb2_grpc,
)

from post_management.domain.conflicts import ConflictPolicy
from post_management.domain.date_range import parse_date_range
from post_management.domain.errors import DomainError, InvalidArgument
from post_management.domain.limits import ensure_at_most
from post_management.domain.reasons import Reason
from post_management.domain.requested_time import parse_requested_time
from post_management.domain.slots import SlotPolicy
from post_management.domain.timezones import (
    AmbiguousTimePolicy,
    NonexistentTimePolicy,
    load_zone,
)
from post_management.entrypoints.grpc.edge import current_principal
from post_management.entrypoints.grpc.errors import to_rpc_status
from post_management.entrypoints.grpc.mapping import (
    add_posts,
    instant,
    optional_priority,
    parse_uuid,
    post_state_from_proto,
    post_to_proto,
    required_user_id,
    timestamp,
)
from post_management.services.scheduling.listing import (
    Paging,
    ScheduledFilter,
    ScheduledListing,
)
from post_management.services.scheduling.scheduling import MAX_BATCH, SchedulingService
from post_management.services.scheduling.support import (
    RefusedItem,
    ScheduleRequest,
    ScheduleResult,
)

Context = grpc.aio.ServicerContext[Any, Any]
pb = scheduling_service_pb2

_SLOT_POLICY: dict[int, SlotPolicy] = {
    pb.SLOT_POLICY_UNSPECIFIED: SlotPolicy.NEXT,
    pb.SLOT_POLICY_NEXT: SlotPolicy.NEXT,
    pb.SLOT_POLICY_BEST: SlotPolicy.BEST,
}
_CONFLICT: dict[int, ConflictPolicy] = {
    pb.CONFLICT_POLICY_UNSPECIFIED: ConflictPolicy.REJECT,
    pb.CONFLICT_POLICY_REJECT: ConflictPolicy.REJECT,
    pb.CONFLICT_POLICY_MOVE: ConflictPolicy.MOVE,
}
_NONEXISTENT: dict[int, NonexistentTimePolicy] = {
    pb.NONEXISTENT_TIME_POLICY_UNSPECIFIED: NonexistentTimePolicy.REJECT,
    pb.NONEXISTENT_TIME_POLICY_REJECT: NonexistentTimePolicy.REJECT,
    pb.NONEXISTENT_TIME_POLICY_SHIFT_FORWARD: NonexistentTimePolicy.SHIFT_FORWARD,
}
_AMBIGUOUS: dict[int, AmbiguousTimePolicy] = {
    pb.AMBIGUOUS_TIME_POLICY_UNSPECIFIED: AmbiguousTimePolicy.EARLIER,
    pb.AMBIGUOUS_TIME_POLICY_EARLIER: AmbiguousTimePolicy.EARLIER,
    pb.AMBIGUOUS_TIME_POLICY_LATER: AmbiguousTimePolicy.LATER,
}


T = TypeVar("T")


def _enum(table: dict[int, T], value: int, field: str) -> T:
    try:
        return table[value]
    except KeyError:
        raise InvalidArgument.for_field(
            field, f"unknown value {value}", reason=Reason.UNKNOWN_ENUM
        ) from None


def schedule_request(
    message: scheduling_service_pb2.SchedulePostRequest, prefix: str = "", user_id: str = ""
) -> ScheduleRequest:
    """Who and how: the ids and the policies; `user_id` fills an empty one (batch items).
    The priority, zone and time come from `with_values`."""
    return ScheduleRequest(
        post_id=parse_uuid(message.post_id, f"{prefix}post_id"),
        user_id=required_user_id(message.user_id or user_id, f"{prefix}user_id"),
        conflict_policy=_enum(_CONFLICT, message.conflict_policy, f"{prefix}conflict_policy"),
        nonexistent=_enum(
            _NONEXISTENT, message.nonexistent_time_policy, f"{prefix}nonexistent_time_policy"
        ),
        ambiguous=_enum(
            _AMBIGUOUS, message.ambiguous_time_policy, f"{prefix}ambiguous_time_policy"
        ),
        request_id=message.request_id,
        slot_policy=_enum(_SLOT_POLICY, message.slot_policy, f"{prefix}slot_policy"),
    )


def with_values(
    command: ScheduleRequest, message: scheduling_service_pb2.SchedulePostRequest
) -> ScheduleRequest:
    """The command with the request's priority, time zone and time, each read."""
    return dataclasses.replace(
        command,
        priority=optional_priority(message.priority),
        timezone=load_zone(message.timezone) if message.timezone else None,
        scheduled_for=parse_requested_time(message.scheduled_for),
    )


def batch_item(
    message: scheduling_service_pb2.SchedulePostRequest, index: int, user_id: str
) -> ScheduleRequest | RefusedItem:
    """A bad id or policy fails the batch; a bad priority, zone or time is the item's
    own error (the use case reports it where the batch asks)."""
    command = schedule_request(message, f"requests[{index}].", user_id)
    try:
        return with_values(command, message)
    except DomainError as error:
        return RefusedItem(command.post_id, command.user_id, error)


def schedule_response(result: ScheduleResult) -> scheduling_service_pb2.SchedulePostResponse:
    return pb.SchedulePostResponse(
        post=post_to_proto(result.post, result.findings),
        moved=result.moved,
        move_reason=result.move_reason,
    )


class SchedulingServicer(scheduling_service_pb2_grpc.PostSchedulingServiceServicer):
    def __init__(self, scheduling: SchedulingService, listing: ScheduledListing) -> None:
        self._scheduling = scheduling
        self._listing = listing

    async def SchedulePost(
        self, request: scheduling_service_pb2.SchedulePostRequest, context: Context
    ) -> scheduling_service_pb2.SchedulePostResponse:
        command = schedule_request(request)
        principal = current_principal()
        # Who may act is answered before the values are read, as for every command.
        principal.ensure_can_act_for(command.user_id)
        command = with_values(command, request)
        # Awaited on the loop: the asynchronous unit of work, no worker thread.
        result = await self._scheduling.schedule(principal, command)
        return schedule_response(result)

    async def ListScheduledPosts(
        self, request: scheduling_service_pb2.ListScheduledPostsRequest, context: Context
    ) -> scheduling_service_pb2.ListScheduledPostsResponse:
        user_id = required_user_id(request.user_id)
        account_id = parse_uuid(request.account_id, "account_id") if request.account_id else None
        state = post_state_from_proto(request.state)
        principal = current_principal()
        principal.ensure_can_act_for(user_id)
        where = ScheduledFilter(
            user_id=user_id,
            account_id=account_id,
            state=state,
            priority=optional_priority(request.priority),
            dates=parse_date_range(request.from_date, request.to_date),
        )
        # Awaited on the loop: an asynchronous read, no worker thread.
        paging = Paging(request.limit, request.offset, request.page_token)
        page = await self._listing.list(principal, where, paging)
        response = pb.ListScheduledPostsResponse(
            total_count=page.total_count,
            limit=page.limit,
            offset=page.offset,
            next_page_token=page.next_page_token,
        )
        add_posts(response.posts, page.posts)
        return response

    async def CancelSchedule(
        self, request: scheduling_service_pb2.CancelScheduleRequest, context: Context
    ) -> post_pb2.Post:
        # The user id is checked before the post id is even parsed: nothing about a
        # foreign post leaks.
        user_id = required_user_id(request.user_id)
        principal = current_principal()
        principal.ensure_can_act_for(user_id)
        post_id = parse_uuid(request.post_id, "post_id")
        post = await self._scheduling.cancel(principal, post_id, user_id)
        return post_to_proto(post)

    async def BatchSchedulePosts(
        self, request: scheduling_service_pb2.BatchSchedulePostsRequest, context: Context
    ) -> scheduling_service_pb2.BatchSchedulePostsResponse:
        user_id = required_user_id(request.user_id)
        principal = current_principal()
        principal.ensure_can_act_for(user_id)
        ensure_at_most(
            request.requests, MAX_BATCH, "requests", "items per batch", Reason.BATCH_TOO_LARGE
        )
        commands = [batch_item(item, index, user_id) for index, item in enumerate(request.requests)]
        items = await self._scheduling.batch(
            principal, user_id, commands, all_or_nothing=request.all_or_nothing
        )
        results = []
        for item in items:
            result = pb.BatchScheduleResult(post_id=str(item.post_id))
            if item.result is not None:
                result.response.CopyFrom(schedule_response(item.result))
            if item.error is not None:
                result.error.CopyFrom(to_rpc_status(item.error))
            results.append(result)
        return pb.BatchSchedulePostsResponse(results=results)

    async def ListFreeSlots(
        self, request: scheduling_service_pb2.ListFreeSlotsRequest, context: Context
    ) -> scheduling_service_pb2.ListFreeSlotsResponse:
        principal = current_principal()
        user_id = request.user_id
        if user_id:
            principal.ensure_can_act_for(required_user_id(user_id))
        account_id = parse_uuid(request.account_id, "account_id")
        after = instant(request.after, "after") if request.HasField("after") else None
        found = await self._scheduling.free_slots(
            principal, account_id, user_id, after, request.count
        )
        return pb.ListFreeSlotsResponse(
            slots=[stamp for stamp in map(timestamp, found.slots) if stamp is not None],
            timezone=found.timezone,
        )
