"""Who is calling, and what they may act on."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from post_management.domain.errors import PermissionDenied
from post_management.domain.reasons import Reason


class Role(enum.StrEnum):
    USER = "user"  # acts only on its own posts and accounts
    SERVICE = "service"  # a sibling service; may act for any user
    ADMIN = "admin"  # operators: everything, including dead letters


@dataclass(frozen=True)
class Principal:
    subject: str
    role: Role

    def ensure_can_act_for(self, user_id: str) -> None:
        """A `user` may only touch its own data; other roles act for anyone."""
        if self.role is Role.USER and user_id != self.subject:
            raise PermissionDenied(
                "the caller may not act for this user",
                reason=Reason.FOREIGN_USER,
            )
