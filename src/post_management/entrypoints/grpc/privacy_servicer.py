"""AccountService's audit trail, export and erasure RPCs (docs/security.md)."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import struct_pb2
from xmp.posts.v1 import account_service_pb2

from post_management.domain.privacy import AuditRecord, MetricsRecord
from post_management.entrypoints.grpc.campaign_servicer import campaign_to_proto
from post_management.entrypoints.grpc.edge import current_principal
from post_management.entrypoints.grpc.mapping import (
    account_to_proto,
    post_to_proto,
    required_user_id,
    timestamp,
)
from post_management.services.privacy.privacy import PrivacyService

Context = grpc.aio.ServicerContext[Any, Any]


def _struct(document: dict[str, Any] | None) -> struct_pb2.Struct | None:
    if document is None:
        return None
    message = struct_pb2.Struct()
    message.update(document)
    return message


def audit_to_proto(record: AuditRecord) -> account_service_pb2.AuditEvent:
    return account_service_pb2.AuditEvent(
        id=str(record.id),
        occur_time=timestamp(record.occurred_at),
        actor=record.actor,
        action=record.action,
        resource_type=record.resource_type,
        resource_id=str(record.resource_id),
        user_id=record.user_id,
        request_id=record.request_id,
        before=_struct(record.before),
        after=_struct(record.after),
    )


def _metrics_to_proto(record: MetricsRecord) -> account_service_pb2.UserMetricsSnapshot:
    return account_service_pb2.UserMetricsSnapshot(
        post_id=str(record.post_id),
        collect_time=timestamp(record.collected_at),
        impressions=record.impressions,
        likes=record.likes,
        reposts=record.reposts,
        replies=record.replies,
        quotes=record.quotes,
        bookmarks=record.bookmarks,
    )


class PrivacyMethods:
    """Mixed into AccountServicer: the RPCs that act on a whole user."""

    _privacy: PrivacyService

    async def ListAuditEvents(
        self, request: account_service_pb2.ListAuditEventsRequest, context: Context
    ) -> account_service_pb2.ListAuditEventsResponse:
        user_id = required_user_id(request.user_id)
        page = await self._privacy.list_audit_events(
            current_principal(), user_id, request.page_size, request.page_token
        )
        return account_service_pb2.ListAuditEventsResponse(
            audit_events=[audit_to_proto(record) for record in page.items],
            next_page_token=page.next_page_token,
        )

    async def ExportUserData(
        self, request: account_service_pb2.ExportUserDataRequest, context: Context
    ) -> account_service_pb2.ExportUserDataResponse:
        user_id = required_user_id(request.user_id)
        export = await self._privacy.export(current_principal(), user_id)
        return account_service_pb2.ExportUserDataResponse(
            user_id=export.user_id,
            export_time=timestamp(export.exported_at),
            accounts=[account_to_proto(account) for account in export.accounts],
            posts=[post_to_proto(post) for post in export.posts],
            metrics=[_metrics_to_proto(record) for record in export.metrics],
            audit_events=[audit_to_proto(record) for record in export.audit_events],
            campaigns=[campaign_to_proto(campaign) for campaign in export.campaigns],
        )

    async def EraseUserData(
        self, request: account_service_pb2.EraseUserDataRequest, context: Context
    ) -> account_service_pb2.EraseUserDataResponse:
        user_id = required_user_id(request.user_id)
        principal = current_principal()
        report = await self._privacy.erase(principal, user_id, request.delete_from_x)
        return account_service_pb2.EraseUserDataResponse(
            user_id=user_id,
            posts_deleted=report.posts_deleted,
            accounts_deleted=report.accounts_deleted,
            media_deleted=report.media_deleted,
            audit_events_pseudonymised=report.audit_events_pseudonymised,
            x_removals_queued=report.x_removals_queued,
            erase_time=timestamp(report.erased_at),
        )
