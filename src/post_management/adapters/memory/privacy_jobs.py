"""The background jobs' privacy storage over the memory store (ports/privacy.py
`PrivacyStore`: removals on X and retention's purges), the twin of
adapters/db/privacy_repository.py's `SqlPrivacyStore`.

Each call runs in a synchronous memory unit of work of the store's factory, so it is
atomic and rolled back whole when it fails. The removals it reads are the rows the
request path's erasure (adapters/memory/privacy.py) queued on the same store.
tests/contract/test_privacy_jobs_contract.py holds both to one behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from uuid import UUID

from post_management.adapters.memory.store import Tables
from post_management.adapters.memory.unit_of_work import MemoryUnitOfWorkFactory
from post_management.domain.post import PostState
from post_management.domain.x_spend import Metered
from post_management.ports.privacy import (
    MAX_REMOVAL_ATTEMPTS,
    MAX_REMOVAL_ERROR_CHARS,
    PendingRemoval,
    RetentionCutoffs,
)


class MemoryPrivacyJobStore:
    def __init__(self, units: MemoryUnitOfWorkFactory) -> None:
        self._units = units

    def pending_removals(self, limit: int) -> list[PendingRemoval]:
        with self._units():
            pending = sorted(
                (row for row in self._units.store.tables.x_removals if row.done_at is None),
                key=lambda row: row.id,
            )
            return [
                PendingRemoval(row.id, row.x_post_id, row.credentials, row.attempts, row.user_hash)
                for row in pending[: max(limit, 0)]
            ]

    def finish_removal(
        self,
        removal_id: int,
        now: datetime,
        error: str,
        final: bool,
        spent: Sequence[Metered] = (),
    ) -> None:
        with self._units() as work:
            work.spend.record(spent)
            tables = self._units.store.tables
            for index, row in enumerate(tables.x_removals):
                if row.id != removal_id:
                    continue
                # As the SQL UPDATE: decided on the attempts counted before this one.
                done = final or row.attempts + 1 >= MAX_REMOVAL_ATTEMPTS
                tables.x_removals[index] = replace(
                    row,
                    attempts=row.attempts + 1,
                    last_error=error[:MAX_REMOVAL_ERROR_CHARS],
                    done_at=now if done else None,
                    credentials=None if done else row.credentials,
                )
            work.commit()

    def record_spent(self, spent: Sequence[Metered]) -> None:
        with self._units() as work:
            work.spend.record(spent)
            work.commit()

    def purge(self, cutoffs: RetentionCutoffs) -> dict[str, int]:
        with self._units() as work:
            tables = self._units.store.tables
            metrics = _purge_metrics(tables, cutoffs.metrics_before)
            dead = _purge_dead_letters(tables, cutoffs.dead_letters_before)
            removals = len(tables.x_removals)
            tables.x_removals = [
                row
                for row in tables.x_removals
                if row.done_at is None or row.done_at >= cutoffs.removals_before
            ]
            removals -= len(tables.x_removals)
            # After the dead letters: their media may have just become unattached.
            unattached = tables.drop_media(_unattached(tables, cutoffs.unattached_media_before))
            published = tables.drop_media(_published(tables, cutoffs.published_media_before))
            work.commit()
        return {
            "metric_snapshots": metrics,
            "dead_letters": dead,
            "x_removals": removals,
            "unattached_media": unattached,
            "published_media": published,
        }


def _purge_metrics(tables: Tables, cutoff: datetime) -> int:
    purged = 0
    for post_id, snapshots in tables.post_metrics.items():
        kept = [s for s in snapshots if s.collected_at >= cutoff]
        purged += len(snapshots) - len(kept)
        tables.post_metrics[post_id] = kept
    return purged


def _purge_dead_letters(tables: Tables, cutoff: datetime) -> int:
    dead = {
        post.id
        for post in tables.posts.values()
        if post.state is PostState.DEAD_LETTERED and post.updated_at < cutoff
    }
    for post_id in dead:
        del tables.posts[post_id]
    tables.drop_post_rows(dead)
    return len(dead)


def _unattached(tables: Tables, cutoff: datetime) -> set[UUID]:
    """Media uploaded before the cutoff that no post attaches."""
    attached = {
        media_id for post in tables.posts.values() for media_id in post.attachment_ids or ()
    }
    return {
        media_id
        for media_id, (media, _) in tables.media.items()
        if media.created_at < cutoff and media_id not in attached
    }


def _published(tables: Tables, cutoff: datetime) -> set[UUID]:
    """Media every post of which was published before the cutoff. As SQL's bool_and
    over `state = 'PUBLISHED' AND published_at < cutoff`: a published post without a
    publication time is unknown, left out of the vote; media without a known vote
    stays."""
    votes: dict[UUID, list[bool]] = {}
    for post in tables.posts.values():
        for media_id in post.attachment_ids or ():
            found = votes.setdefault(media_id, [])
            if post.state is not PostState.PUBLISHED:
                found.append(False)
            elif post.published_at is not None:
                found.append(post.published_at < cutoff)
    return {
        media_id
        for media_id, found in votes.items()
        if found and all(found) and media_id in tables.media
    }
