"""The bag of use cases the gRPC server serves, each on its adapters."""

from __future__ import annotations

from datetime import timedelta

from post_management.adapters.db.async_privacy import AsyncSqlPrivacyStore
from post_management.adapters.db.async_unit_of_work import AsyncSqlUnitOfWorkFactory
from post_management.adapters.ml.gradient_boosting import GradientBoostingLearner
from post_management.adapters.profanity import ProfanityCheck
from post_management.bootstrap import health
from post_management.bootstrap.build_info import build_info
from post_management.bootstrap.infrastructure import Infrastructure, post_writes_hook
from post_management.bootstrap.jobs import Jobs
from post_management.bootstrap.settings import Settings
from post_management.entrypoints.grpc.analytics_servicer import AnalyticsServices
from post_management.entrypoints.grpc.server import Services
from post_management.entrypoints.grpc.tokens import TokenCodec
from post_management.services.accounts.accounts import AccountService
from post_management.services.analytics.analytics import AnalyticsQueries
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
from post_management.services.scheduling.listing import ScheduledListing
from post_management.services.scheduling.scheduling import SchedulingService

# Longer than any load seen here (about 2 s); past it the first screens wait instead.
MODEL_LOAD_TIMEOUT_SECONDS = 60.0

# How long an immediate publish waits for a dispatcher that claimed the post first:
# inside the 15 s Envoy gives a REST call (entrypoints/envoy.yaml.tmpl), whose callers
# set no gRPC deadline.
OUTCOME_WAIT_S = 10.0


def grpc_services(
    settings: Settings, infrastructure: Infrastructure, jobs: Jobs, tokens: TokenCodec
) -> Services:
    clock, cache = infrastructure.clock, infrastructure.analytics_cache
    posts_cache, post_reads = infrastructure.post_cache, infrastructure.post_reads
    offensive = ProfanityCheck()
    # Loaded before serving: CreatePost and UpdatePost need it, and a request that
    # found it loading would wait seconds (scikit-learn's import) for its screen.
    offensive.warm_up().join(timeout=MODEL_LOAD_TIMEOUT_SECONDS)
    screen = ContentScreen(offensive)
    # The request path's commands: awaited on the serving loop, over a pool of their own.
    requests_uow = AsyncSqlUnitOfWorkFactory(
        infrastructure.command_pool,
        infrastructure.box,
        infrastructure.pseudonyms,
        post_writes_hook(posts_cache),
        prices=infrastructure.prices,
    )
    predictor = EngagementPredictor(requests_uow, clock, GradientBoostingLearner())
    return Services(
        posts=PostService(requests_uow, clock, posts_cache, screen),
        post_queries=PostQueries(post_reads, posts_cache),
        resources=[
            post_reads,
            infrastructure.command_pool,
            infrastructure.request_cache,
            infrastructure.request_limiter,
        ],
        media=MediaService(requests_uow, clock, settings.posts.media_quota()),
        accounts=AccountService(requests_uow, clock),
        privacy=PrivacyService(
            requests_uow,
            AsyncSqlPrivacyStore(infrastructure.command_pool, post_writes_hook(posts_cache)),
            clock,
            infrastructure.pseudonyms,
            analytics_cache=cache,
        ),
        rpc_limiter=infrastructure.request_limiter,
        request_threads=settings.server.grpc_request_threads,
        request_budget=settings.server.request_budget(),
        tokens=tokens,
        build=build_info(infrastructure.components),
        readiness=health.readiness(infrastructure),
        health_report=health.health_report(
            infrastructure, kafka_configured=bool(settings.kafka.kafka_bootstrap_servers)
        ),
        scheduling=SchedulingService(
            requests_uow,
            clock,
            past_grace=settings.posts.past_grace(),
            horizon=settings.posts.horizon(),
            screen=screen,
            best_time=BestFreeTime(predictor),
        ),
        scheduled_listing=ScheduledListing(post_reads),
        # Due times it stamps are compared with the database's now() by the claims.
        publishing=PublishCommands(
            requests_uow,
            infrastructure.queue,
            jobs.publisher,
            infrastructure.database_clock,
            jobs.engine_settings.lease,
            outcome_wait=timedelta(seconds=min(settings.x.x_call_seconds, OUTCOME_WAIT_S)),
        ),
        analytics=AnalyticsServices(
            AnalyticsQueries(
                requests_uow,
                clock,
                cache,
                settings.analytics.answers(),
                predictor,
            ),
            XWebhooks(requests_uow, clock, cache, settings.x.webhook_secret()),
            AccountGrowthQueries(requests_uow, clock),
            predictor,
            XSpendQueries(requests_uow, clock),
        ),
        campaigns=CampaignService(requests_uow, clock),
    )
