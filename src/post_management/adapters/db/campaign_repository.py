"""CampaignRepository over SQLAlchemy Core."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Select, and_, bindparam, insert, or_, select

from post_management.adapters.db.analytics_schema import campaigns
from post_management.domain.campaigns import Campaign
from post_management.ports.repositories import Cursor

GET = select(campaigns).where(campaigns.c.id == bindparam("campaign_id"))
INSERT = insert(campaigns)


def campaign_from_row(row: Mapping[Any, Any]) -> Campaign:
    return Campaign(
        id=row["id"],
        user_id=row["user_id"],
        name=row["name"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def campaign_row(campaign: Campaign) -> dict[str, Any]:
    return {
        "id": campaign.id,
        "user_id": campaign.user_id,
        "name": campaign.name,
        "starts_at": campaign.starts_at,
        "ends_at": campaign.ends_at,
        "created_at": campaign.created_at,
        "updated_at": campaign.updated_at,
    }


def list_statement(user_id: str, after: Cursor | None, limit: int) -> Select[Any]:
    """ListCampaigns' page: the user's campaigns after the cursor, newest first."""
    query = select(campaigns).where(campaigns.c.user_id == user_id)
    if after is not None:
        query = query.where(
            or_(
                campaigns.c.created_at < after.created_at,
                and_(campaigns.c.created_at == after.created_at, campaigns.c.id < after.id),
            )
        )
    return query.order_by(campaigns.c.created_at.desc(), campaigns.c.id.desc()).limit(limit)


class SqlCampaignRepository:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def add(self, campaign: Campaign) -> None:
        self._conn.execute(INSERT, campaign_row(campaign))

    def get(self, campaign_id: UUID) -> Campaign | None:
        found = self._conn.execute(GET, {"campaign_id": campaign_id}).mappings().first()
        return campaign_from_row(found) if found else None

    def list(self, user_id: str, after: Cursor | None, limit: int) -> list[Campaign]:
        query = list_statement(user_id, after, limit)
        return [campaign_from_row(row) for row in self._conn.execute(query).mappings()]
