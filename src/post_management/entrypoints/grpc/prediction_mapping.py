"""PredictEngagement's request and answer in protobuf terms."""

from __future__ import annotations

import math
from datetime import datetime

from xmp.posts.v1 import analytics_service_pb2 as pb
from xmp.posts.v1 import media_pb2

from post_management.domain.errors import InvalidArgument
from post_management.domain.media import MediaKind
from post_management.entrypoints.grpc.mapping import instant, timestamp
from post_management.services.analytics.engagement_prediction import (
    PredictionView,
    TargetPrediction,
)

_MEDIA = {
    media_pb2.MEDIA_KIND_UNSPECIFIED: None,
    media_pb2.MEDIA_KIND_IMAGE: MediaKind.IMAGE,
    media_pb2.MEDIA_KIND_GIF: MediaKind.GIF,
    media_pb2.MEDIA_KIND_VIDEO: MediaKind.VIDEO,
}


def media_kind(value: int) -> MediaKind | None:
    if value not in _MEDIA:
        raise InvalidArgument.for_field("media_kind", f"unknown media kind {value}")
    return _MEDIA[value]  # type: ignore[index]


def planned_time(request: pb.PredictEngagementRequest) -> datetime | None:
    if not request.HasField("planned_time"):
        return None
    return instant(request.planned_time, "planned_time")


def _bound(value: float) -> float:
    # An interval end the calibration could not bound is sent as the largest double.
    return value if math.isfinite(value) else 1.7976931348623157e308


def figure(prediction: TargetPrediction) -> pb.PredictedFigure:
    answer = pb.PredictedFigure(
        value=prediction.value,
        lower=_bound(prediction.lower),
        upper=_bound(prediction.upper),
        basis=pb.PredictionBasis.Value(f"PREDICTION_BASIS_{prediction.basis.value}"),
        effects=[
            pb.FeatureEffect(feature=e.feature, value=e.value, effect=e.effect)
            for e in prediction.effects
        ],
    )
    holdout = prediction.holdout
    if holdout is not None:
        answer.error.CopyFrom(
            pb.ModelError(
                holdout_posts=holdout.posts,
                mean_absolute_error=holdout.mae,
                baseline_mean_absolute_error=holdout.baseline_mae,
                interval_coverage=holdout.coverage,
                beats_baseline=holdout.beats_baseline,
            )
        )
    return answer


def prediction_to_proto(view: PredictionView) -> pb.EngagementPrediction:
    return pb.EngagementPrediction(
        account_id=str(view.account_id),
        planned_time=timestamp(view.planned_time),
        impressions=figure(view.impressions),
        engagement_rate=figure(view.engagement_rate),
        history_posts=view.history_posts,
        notes=view.notes,
    )
