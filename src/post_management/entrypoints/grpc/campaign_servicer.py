"""CampaignService over gRPC: map, await the use case on the serving loop, map back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc
from xmp.posts.v1 import analytics_service_pb2 as analytics_pb
from xmp.posts.v1 import campaign_pb2, campaign_service_pb2, campaign_service_pb2_grpc

from post_management.domain.analytics import Snapshot
from post_management.domain.campaigns import Campaign
from post_management.domain.errors import InvalidArgument
from post_management.domain.reasons import Reason
from post_management.entrypoints.grpc.analytics_servicer import snapshot_to_proto
from post_management.entrypoints.grpc.edge import current_principal
from post_management.entrypoints.grpc.mapping import (
    instant,
    parse_uuid,
    post_state_to_proto,
    required_user_id,
    timestamp,
)
from post_management.services.analytics.campaigns import (
    CampaignService,
    NewCampaign,
    RankedPost,
    Summary,
)

Context = grpc.aio.ServicerContext[Any, Any]
# Totals are sums over posts, not one snapshot: they carry no collection time.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def campaign_to_proto(campaign: Campaign) -> campaign_pb2.Campaign:
    return campaign_pb2.Campaign(
        id=str(campaign.id),
        user_id=campaign.user_id,
        name=campaign.name,
        start_time=timestamp(campaign.starts_at),
        end_time=timestamp(campaign.ends_at),
        create_time=timestamp(campaign.created_at),
        update_time=timestamp(campaign.updated_at),
    )


def _summary(summary: Summary) -> campaign_service_pb2.PerformanceSummary:
    totals = snapshot_to_proto(Snapshot(_EPOCH, summary.totals))
    totals.ClearField("collected_at")
    return campaign_service_pb2.PerformanceSummary(
        measured_posts=summary.measured_posts,
        totals=totals,
        engagement_rate=summary.engagement_rate,
        click_through_rate=summary.click_through_rate,
    )


def _ranked(post: RankedPost) -> campaign_service_pb2.RankedPost:
    counts = post.counts
    return campaign_service_pb2.RankedPost(
        post_id=str(post.post_id),
        x_post_id=post.x_post_id,
        impressions=counts.impressions,
        engagements=counts.engagements,
        engagement_rate=counts.engagement_rate,
        click_through_rate=counts.click_through_rate,
    )


class CampaignServicer(campaign_service_pb2_grpc.CampaignServiceServicer):
    def __init__(self, campaigns: CampaignService) -> None:
        self._campaigns = campaigns

    async def CreateCampaign(
        self, request: campaign_service_pb2.CreateCampaignRequest, context: Context
    ) -> campaign_pb2.Campaign:
        if not request.HasField("campaign"):
            raise InvalidArgument.for_field("campaign", "is required", reason=Reason.MISSING_FIELD)
        message = request.campaign
        new = NewCampaign(
            user_id=required_user_id(message.user_id, "campaign.user_id"),
            name=message.name,
            starts_at=_instant(message, "start_time"),
            ends_at=_instant(message, "end_time"),
        )
        campaign = await self._campaigns.create(current_principal(), new, request.request_id)
        return campaign_to_proto(campaign)

    async def GetCampaign(
        self, request: campaign_service_pb2.GetCampaignRequest, context: Context
    ) -> campaign_pb2.Campaign:
        campaign_id = parse_uuid(request.campaign_id, "campaign_id")
        campaign = await self._campaigns.get(current_principal(), campaign_id)
        return campaign_to_proto(campaign)

    async def ListCampaigns(
        self, request: campaign_service_pb2.ListCampaignsRequest, context: Context
    ) -> campaign_service_pb2.ListCampaignsResponse:
        user_id = required_user_id(request.user_id)
        page = await self._campaigns.list(
            current_principal(), user_id, request.page_size, request.page_token
        )
        return campaign_service_pb2.ListCampaignsResponse(
            campaigns=[campaign_to_proto(c) for c in page.items],
            next_page_token=page.next_page_token,
        )

    async def GetCampaignAnalytics(
        self, request: campaign_service_pb2.GetCampaignAnalyticsRequest, context: Context
    ) -> campaign_service_pb2.CampaignAnalytics:
        campaign_id = parse_uuid(request.campaign_id, "campaign_id")
        report = await self._campaigns.analytics(current_principal(), campaign_id)
        return campaign_service_pb2.CampaignAnalytics(
            campaign_id=str(report.campaign_id),
            posts_by_state=[
                analytics_pb.StateCount(state=post_state_to_proto(state), count=count)
                for state, count in sorted(report.posts_by_state.items())
            ],
            campaign=_summary(report.campaign),
            outside=_summary(report.outside),
            best_posts=[_ranked(p) for p in report.best],
            worst_posts=[_ranked(p) for p in report.worst],
            daily=[
                campaign_service_pb2.CampaignDay(
                    date=day.day.isoformat(),
                    published_posts=day.published_posts,
                    impressions=day.totals.impressions,
                    engagements=day.totals.engagements,
                    url_link_clicks=day.totals.url_link_clicks,
                )
                for day in report.daily
            ],
            period_start=timestamp(report.period_start),
            period_end=timestamp(report.period_end),
        )


def _instant(message: campaign_pb2.Campaign, field: str) -> datetime | None:
    if not message.HasField(field):  # type: ignore[arg-type]
        return None
    return instant(getattr(message, field), f"campaign.{field}")
