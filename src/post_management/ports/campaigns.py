"""Storage of campaigns (domain/campaigns.py)."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from post_management.domain.campaigns import Campaign
from post_management.ports.repositories import Cursor


class CampaignRepository(Protocol):
    def add(self, campaign: Campaign) -> None: ...

    def get(self, campaign_id: UUID) -> Campaign | None: ...

    def list(self, user_id: str, after: Cursor | None, limit: int) -> list[Campaign]:
        """The user's campaigns, newest first (after: the last one of the page before)."""
        ...
