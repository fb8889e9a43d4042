"""The bag of use cases the gRPC server serves, each on its adapters."""

from __future__ import annotations

from datetime import timedelta

from post_management.adapters.ml.gradient_boosting import GradientBoostingLearner
from post_management.adapters.profanity import ProfanityCheck
from post_management.adapters.rate_limit import RedisRateLimiter
from post_management.adapters.shared_cache import FailoverCache
from post_management.bootstrap import health
from post_management.bootstrap.build_info import build_info
from post_management.bootstrap.infrastructure import Infrastructure
from post_management.bootstrap.jobs import Jobs
from post_management.config import Settings
from post_management.domain.analytics import DEFAULT_BENCHMARKS
from post_management.domain.media import MediaQuota
from post_management.entrypoints.grpc.analytics_servicer import AnalyticsServices
from post_management.entrypoints.grpc.rate_limit import RequestBudget
from post_management.entrypoints.grpc.server import Services
from post_management.entrypoints.grpc.tokens import TokenCodec
from post_management.services.accounts.accounts import AccountService
from post_management.services.analytics.analytics import AnalyticsQueries, AnalyticsSettings
from post_management.services.analytics.campaigns import CampaignService
from post_management.services.analytics.engagement_prediction import EngagementPredictor
from post_management.services.analytics.growth import AccountGrowthQueries
from post_management.services.analytics.optimal_times import BestFreeTime
from post_management.services.analytics.webhooks import XWebhooks
from post_management.services.analytics.x_spend import XSpendQueries
from post_management.services.posts.content_screening import ContentScreen
from post_management.services.posts.media import MediaService
from post_management.services.posts.posts import PostService
from post_management.services.posts.queries import PostQueries
from post_management.services.privacy.privacy import PrivacyService
from post_management.services.publishing.commands import PublishCommands
from post_management.services.scheduling.listing import AsyncScheduledListing
from post_management.services.scheduling.scheduling import SchedulingService


def grpc_services(
    settings: Settings, infrastructure: Infrastructure, jobs: Jobs, tokens: TokenCodec
) -> Services:
    uow, analytics_uow = infrastructure.uow, infrastructure.analytics_uow
    clock, cache = infrastructure.clock, infrastructure.analytics_cache
    shared, limiter = infrastructure.shared_cache, infrastructure.limiter
    posts_cache, post_reads = infrastructure.post_cache, infrastructure.post_reads
    predictor = EngagementPredictor(analytics_uow, clock, GradientBoostingLearner())
    offensive = ProfanityCheck()
    offensive.warm_up()
    screen = ContentScreen(offensive)
    return Services(
        posts=PostService(uow, clock, posts_cache, screen),
        post_queries=PostQueries(
            post_reads, posts_cache, cache_blocks=isinstance(shared, FailoverCache)
        ),
        resources=[post_reads],
        media=MediaService(
            uow, clock, MediaQuota(settings.media_quota_items, settings.media_quota_bytes)
        ),
        accounts=AccountService(uow, clock),
        privacy=PrivacyService(uow, infrastructure.privacy_store, clock, infrastructure.pseudonyms),
        rpc_limiter=limiter,
        rpc_limiter_blocks=isinstance(limiter, RedisRateLimiter),
        request_threads=settings.grpc_request_threads,
        request_budget=RequestBudget(
            user_limit=settings.rpc_rate_limit_per_minute,
            service_limit=settings.rpc_rate_limit_service_per_minute,
            webhook_limit=settings.webhook_rate_limit_per_minute,
        ),
        tokens=tokens,
        build=build_info(infrastructure.components),
        readiness=health.readiness(infrastructure),
        health_report=health.health_report(
            infrastructure, kafka_configured=bool(settings.kafka_bootstrap_servers)
        ),
        scheduling=SchedulingService(
            uow,
            clock,
            past_grace=timedelta(seconds=settings.schedule_past_grace_seconds),
            horizon=timedelta(days=settings.schedule_horizon_days),
            screen=screen,
            best_time=BestFreeTime(analytics_uow, clock, predictor),
        ),
        scheduled_listing=AsyncScheduledListing(post_reads),
        # Due times it stamps are compared with the database's now() by the claims.
        publishing=PublishCommands(
            uow,
            infrastructure.queue,
            jobs.publisher,
            infrastructure.database_clock,
            jobs.engine_settings.lease,
        ),
        analytics=AnalyticsServices(
            AnalyticsQueries(
                analytics_uow,
                clock,
                cache,
                AnalyticsSettings(
                    settings.analytics_cache_ttl_seconds,
                    settings.analytics_benchmarks or dict(DEFAULT_BENCHMARKS),
                ),
                predictor,
            ),
            XWebhooks(analytics_uow, clock, cache, webhook_secret(settings)),
            AccountGrowthQueries(analytics_uow, clock),
            predictor,
            XSpendQueries(uow, clock),
        ),
        campaigns=CampaignService(analytics_uow, clock),
    )


def webhook_secret(settings: Settings) -> str | None:
    """X signs webhooks with the app's consumer secret. Unset: the webhook routes are
    off (no public fallback that anyone could sign with)."""
    secret = settings.twitter_consumer_secret
    return secret.get_secret_value() if secret is not None else None
