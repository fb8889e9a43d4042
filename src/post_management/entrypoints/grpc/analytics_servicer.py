"""AnalyticsService over gRPC, including the public X webhook methods."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import grpc
from google.api import httpbody_pb2
from xmp.posts.v1 import analytics_service_pb2 as pb
from xmp.posts.v1 import analytics_service_pb2_grpc

from post_management.domain.analytics import Snapshot
from post_management.domain.date_range import parse_date_range
from post_management.domain.growth import ATTRIBUTION_NOTE
from post_management.entrypoints.grpc.edge import current_principal
from post_management.entrypoints.grpc.mapping import (
    checked_user_id,
    parse_uuid,
    post_state_to_proto,
    required_user_id,
    timestamp,
)
from post_management.entrypoints.grpc.prediction_mapping import (
    media_kind,
    planned_time,
    prediction_to_proto,
)
from post_management.services.analytics.analytics import AnalyticsQueries
from post_management.services.analytics.engagement_prediction import EngagementPredictor
from post_management.services.analytics.growth import AccountGrowthQueries
from post_management.services.analytics.webhooks import SIGNATURE_HEADER, XWebhooks
from post_management.services.analytics.x_spend import SpendQuery, XSpendQueries

Context = grpc.aio.ServicerContext[Any, Any]

SERVICE = "/xmp.posts.v1.AnalyticsService/"
# Authenticated by X's HMAC signature instead of a token (edge.PUBLIC_METHODS).
WEBHOOK_METHODS = frozenset({SERVICE + "VerifyXWebhook", SERVICE + "ReceiveXWebhook"})


@dataclass
class AnalyticsServices:
    queries: AnalyticsQueries
    webhooks: XWebhooks
    growth: AccountGrowthQueries
    prediction: EngagementPredictor
    spend: XSpendQueries


def snapshot_to_proto(snapshot: Snapshot) -> pb.MetricsSnapshot:
    counts = snapshot.counts
    return pb.MetricsSnapshot(
        collected_at=timestamp(snapshot.collected_at),
        impressions=counts.impressions,
        likes=counts.likes,
        reposts=counts.reposts,
        replies=counts.replies,
        quotes=counts.quotes,
        bookmarks=counts.bookmarks,
        url_link_clicks=counts.url_link_clicks,
        user_profile_clicks=counts.user_profile_clicks,
        video_views=counts.video_views,
    )


def _header(context: Context, name: str) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == name:
            return value.decode() if isinstance(value, bytes) else value
    return ""


class AnalyticsServicer(analytics_service_pb2_grpc.AnalyticsServiceServicer):
    def __init__(self, services: AnalyticsServices) -> None:
        self._queries = services.queries
        self._webhooks = services.webhooks
        self._growth = services.growth
        self._prediction = services.prediction
        self._spend = services.spend

    async def GetPostMetrics(
        self, request: pb.GetPostMetricsRequest, context: Context
    ) -> pb.PostMetrics:
        post_id = parse_uuid(request.post_id, "post_id")
        view = await self._queries.post_metrics(current_principal(), post_id)
        return pb.PostMetrics(
            post_id=str(view.post_id),
            x_post_id=view.x_post_id,
            latest=snapshot_to_proto(view.latest) if view.latest else None,
            deleted_on_x=view.deleted_on_x,
        )

    async def GetPostAnalytics(
        self, request: pb.GetPostAnalyticsRequest, context: Context
    ) -> pb.PostAnalytics:
        post_id = parse_uuid(request.post_id, "post_id")
        view = await self._queries.post_analytics(current_principal(), post_id)
        return pb.PostAnalytics(
            post_id=str(view.post_id),
            engagement_rate=view.engagement_rate,
            series=[snapshot_to_proto(s) for s in view.series],
            engagement_velocity=view.engagement_velocity,
            account_percentile=view.account_percentile,
            account_average_engagement_rate=view.account_average,
            account_median_engagement_rate=view.account_median,
            benchmark_engagement_rate=view.benchmark,
            insights=[pb.Insight(text=i.text, figures=i.figures) for i in view.insights],
            click_through_rate=view.series[-1].counts.click_through_rate if view.series else 0.0,
        )

    async def GetUserStats(self, request: pb.GetUserStatsRequest, context: Context) -> pb.UserStats:
        user_id = required_user_id(request.user_id)
        principal = current_principal()
        # Who may act is answered before the dates are read.
        principal.ensure_can_act_for(user_id)
        dates = parse_date_range(request.from_date, request.to_date)
        view = await self._queries.user_stats(principal, user_id, dates)
        return pb.UserStats(
            user_id=view.user_id,
            posts_by_state=[
                pb.StateCount(state=post_state_to_proto(state), count=count)
                for state, count in sorted(view.posts_by_state.items())
            ],
            totals=snapshot_to_proto(Snapshot(view.end, view.totals)),
            average_engagement_rate=view.average_engagement_rate,
            top_post_ids=[str(post_id) for post_id in view.top_post_ids],
            engagement_trend=view.engagement_trend,
            publish_success_rate=view.publish_success_rate,
            median_lateness_seconds=view.median_lateness_seconds,
            click_through_rate=view.totals.click_through_rate,
        )

    async def GetAccountGrowth(
        self, request: pb.GetAccountGrowthRequest, context: Context
    ) -> pb.AccountGrowth:
        account_id = parse_uuid(request.account_id, "account_id")
        dates = parse_date_range(request.from_date, request.to_date)
        view = await self._growth.growth(current_principal(), account_id, dates)
        return pb.AccountGrowth(
            account_id=str(view.account_id),
            daily=[
                pb.GrowthDay(
                    date=day.snapshot.day.isoformat(),
                    followers=day.snapshot.followers,
                    following=day.snapshot.following,
                    posts=day.snapshot.posts,
                    listed=day.snapshot.listed,
                    followers_change=day.followers_change,
                )
                for day in view.summary.days
            ],
            net_change=view.summary.net_change,
            growth_rate=view.summary.growth_rate,
            posts=[
                pb.PostGrowth(
                    post_id=str(p.post_id),
                    published_at=timestamp(p.published_at),
                    followers_gained=p.followers_gained,
                )
                for p in view.posts
            ],
            attribution_note=ATTRIBUTION_NOTE,
        )

    async def GetAudienceActivity(
        self, request: pb.GetAudienceActivityRequest, context: Context
    ) -> pb.AudienceActivity:
        account_id = parse_uuid(request.account_id, "account_id")
        view = await self._growth.audience_activity(current_principal(), account_id, request.days)
        activity = view.activity
        shares = activity.shares()
        return pb.AudienceActivity(
            account_id=str(view.account_id),
            timezone=view.timezone,
            hours=[
                pb.ActivityHour(hour_of_week=hour, engagements=round(amount), share=shares[hour])
                for hour, amount in enumerate(activity.engagements)
            ],
            total_engagements=round(activity.total),
            observations=activity.observations,
        )

    async def GetOptimalTimes(
        self, request: pb.GetOptimalTimesRequest, context: Context
    ) -> pb.OptimalTimes:
        account_id = parse_uuid(request.account_id, "account_id")
        view = await self._queries.optimal_times(
            current_principal(),
            account_id,
            request.days,
            request.count,
        )
        return pb.OptimalTimes(
            account_id=str(view.account_id),
            timezone=view.timezone,
            slots=[
                pb.ScoredSlot(start=timestamp(s.start), score=s.score, confidence=s.confidence)
                for s in view.slots
            ],
            basis=pb.TimingBasis.Value(f"TIMING_BASIS_{view.basis.value}"),
        )

    async def PredictEngagement(
        self, request: pb.PredictEngagementRequest, context: Context
    ) -> pb.EngagementPrediction:
        account_id = parse_uuid(request.account_id, "account_id")
        view = await self._prediction.predict(
            current_principal(),
            account_id,
            request.text,
            media_kind(request.media_kind),
            planned_time(request),
        )
        return prediction_to_proto(view)

    async def GetXSpend(self, request: pb.GetXSpendRequest, context: Context) -> pb.XSpend:
        query = SpendQuery(
            account_id=parse_uuid(request.account_id, "account_id") if request.account_id else None,
            user_id=checked_user_id(request.user_id) if request.user_id else None,
            campaign_id=parse_uuid(request.campaign_id, "campaign_id")
            if request.campaign_id
            else None,
            dates=parse_date_range(request.from_date, request.to_date),
        )
        report = await self._spend.report(current_principal(), query)
        return pb.XSpend(
            period_start=timestamp(report.start),
            period_end=timestamp(report.end),
            total_micros=report.total_micros,
            by_kind=[
                pb.SpendByKind(
                    kind=kind,
                    calls=t.calls,
                    units=t.units,
                    charged_units=t.charged_units,
                    cost_micros=t.cost_micros,
                    refused_calls=t.refused_calls,
                )
                for kind, t in report.by_kind.items()
            ],
            by_purpose=[
                pb.SpendByPurpose(purpose=purpose, calls=calls, cost_micros=cost)
                for purpose, (calls, cost) in report.by_purpose.items()
            ],
            daily=[
                pb.SpendDay(
                    date=day.isoformat(), kind=kind, calls=calls, units=units, cost_micros=cost
                )
                for (day, kind), (calls, units, cost) in report.daily.items()
            ],
            published_posts=report.published_posts,
            cost_per_published_post_micros=report.cost_per_published_post_micros,
            metrics_collector_micros=report.metrics_collector_micros,
            reconciler_micros=report.reconciler_micros,
            monthly_budget_micros=report.monthly_budget_micros,
            month_to_date_micros=report.month_to_date_micros,
        )

    async def VerifyXWebhook(
        self, request: pb.VerifyXWebhookRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        token = self._webhooks.crc_response(request.crc_token)
        return httpbody_pb2.HttpBody(
            content_type="application/json",
            data=json.dumps({"response_token": token}).encode(),
        )

    async def ReceiveXWebhook(
        self, request: pb.ReceiveXWebhookRequest, context: Context
    ) -> pb.ReceiveXWebhookResponse:
        result = await self._webhooks.receive(request.body.data, _header(context, SIGNATURE_HEADER))
        return pb.ReceiveXWebhookResponse(
            applied=result.applied, duplicates=result.duplicates, ignored=result.ignored
        )
