"""Settings of the X client adapter."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class XClientSettings:
    consumer_key: str = field(repr=False)
    consumer_secret: str = field(repr=False)
    bearer_token: str | None = field(default=None, repr=False)  # app-only reads
    base_url: str | None = None  # e.g. the local emulator; None talks to X itself
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    media_chunk_bytes: int = 1024 * 1024
    media_processing_timeout: float = 300.0
    # None honours X's check_after_secs exactly; tests may poll sooner.
    media_poll_interval_cap: float | None = None
    timeline_max_pages: int = 10  # 100 posts a page
    client_cache_size: int = 512  # per-account tweepy clients kept for connection reuse
