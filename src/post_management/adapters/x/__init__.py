"""The X API adapter over tweepy."""

from post_management.adapters.x.client import TweepyXApi
from post_management.adapters.x.poster import TweepyXPoster
from post_management.adapters.x.settings import XClientSettings

__all__ = ["TweepyXApi", "TweepyXPoster", "XClientSettings"]
