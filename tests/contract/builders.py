"""Rows the contract tests store through the ports."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from post_management.domain.account import Account, Credentials
from post_management.domain.analytics import Counts, Snapshot
from post_management.domain.post import Post, PostState, Priority
from post_management.ports.unit_of_work import UnitOfWorkFactory


def an_account(now: datetime, user_id: str = "alice", **fields: object) -> Account:
    x_user_id = str(uuid.uuid4().int % 10**12)
    account = Account(
        id=uuid.uuid4(),
        user_id=user_id,
        handle=f"u{x_user_id}",
        x_user_id=x_user_id,
        created_at=now,
        updated_at=now,
        credentials=Credentials(f"token-{x_user_id}", f"secret-{x_user_id}"),
    )
    for name, value in fields.items():
        setattr(account, name, value)
    return account


def a_post(
    account: Account,
    now: datetime,
    *,
    due_in: timedelta | None = timedelta(0),
    state: PostState = PostState.SCHEDULED,
    priority: Priority = Priority.NORMAL,
    text: str | None = None,
    **fields: object,
) -> Post:
    post = Post(
        id=uuid.uuid4(),
        user_id=account.user_id,
        account_id=account.id,
        text=text or f"post {uuid.uuid4().hex[:8]}",
        created_at=now,
        updated_at=now,
        state=state,
        priority=priority,
        scheduled_for=now + due_in if due_in is not None else None,
    )
    for name, value in fields.items():
        setattr(post, name, value)
    return post


def store(uow: UnitOfWorkFactory, *rows: Account | Post) -> None:
    with uow() as work:
        for row in rows:
            if isinstance(row, Account):
                work.accounts.add(row)
            else:
                work.posts.add(row)
        work.commit()


def stored_post(uow: UnitOfWorkFactory, now: datetime, **fields: Any) -> tuple[Account, Post]:
    """A new account and its post (`a_post`: scheduled for `now` unless `fields` say
    otherwise), both stored."""
    account = an_account(now)
    post = a_post(account, now, **fields)
    store(uow, account, post)
    return account, post


def published(account: Account, at: datetime, **fields: object) -> Post:
    x_id = str(uuid.uuid4().int % 10**18)
    values: dict[str, object] = {"x_post_id": x_id, "segment_x_post_ids": [x_id]} | fields
    return a_post(
        account,
        at - timedelta(hours=1),
        due_in=timedelta(minutes=30),
        state=PostState.PUBLISHED,
        published_at=at,
        **values,
    )


def snap(at: datetime, impressions: int = 100, likes: int = 5, **counts: int) -> Snapshot:
    return Snapshot(at, Counts(impressions=impressions, likes=likes, **counts))
