"""APScheduler only ticks: the posts table is the queue (docs/architecture.md).

Jobs never carry posts, so the timer needs no shared job store and any number of
replicas can run it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tick:
    name: str
    run: Callable[[], object]
    every_seconds: float


class Timer:
    def __init__(self, ticks: list[Tick]) -> None:
        self._scheduler = BackgroundScheduler(timezone="UTC")
        for tick in ticks:
            self._scheduler.add_job(
                _guarded(tick),
                "interval",
                seconds=tick.every_seconds,
                id=tick.name,
                coalesce=True,  # a late tick runs once, not once per missed interval
                max_instances=1,  # never two of the same tick at once
                misfire_grace_time=None,
            )

    def start(self) -> None:
        self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)


def _guarded(tick: Tick) -> Callable[[], None]:
    def run() -> None:
        try:
            tick.run()
        except Exception:
            # A failing tick must not stop the timer: the next one retries.
            log.exception("%s tick failed", tick.name)

    return run
