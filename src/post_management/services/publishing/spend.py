"""The X calls of a publish, as the spend ledger records them (docs/x-spend.md)."""

from __future__ import annotations

from datetime import datetime

from post_management.domain.publishing import Claim
from post_management.domain.x_spend import CallKind, Metered, Outcome, Purpose, create_kind
from post_management.ports.x_api import (
    Interrupted,
    MediaUploaded,
    Published,
    UnknownOutcome,
)


def _call(claim: Claim, kind: CallKind, outcome: Outcome, now: datetime) -> Metered:
    return Metered(
        now, kind, Purpose.PUBLISH, claim.user_id, claim.account_id, claim.post_id,
        outcome=outcome,
    )  # fmt: skip


def _outcome(answered: bool, unknown: bool) -> Outcome:
    # An unknown outcome may have been stored (and billed) by X: counted as billed, so
    # a budget never undercounts; the reconciler decides whether it is on X.
    if unknown:
        return Outcome.UNKNOWN
    return Outcome.CHARGED if answered else Outcome.REFUSED


def metered_create(claim: Claim, text: str, result: object, now: datetime) -> list[Metered]:
    """A create-post call; none when the request never left."""
    if isinstance(result, UnknownOutcome) and not result.request_sent:
        return []
    unknown = isinstance(result, UnknownOutcome)
    outcome = _outcome(isinstance(result, Published), unknown)
    return [_call(claim, create_kind(text), outcome, now)]


def metered_upload(claim: Claim, result: object, now: datetime) -> list[Metered]:
    """One media upload (its INIT, APPEND, FINALIZE and STATUS commands)."""
    unknown = isinstance(result, UnknownOutcome | Interrupted)
    outcome = _outcome(isinstance(result, MediaUploaded), unknown)
    return [_call(claim, CallKind.MEDIA_UPLOAD, outcome, now)]
