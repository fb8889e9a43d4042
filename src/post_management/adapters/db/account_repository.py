"""AccountRepository over SQLAlchemy Core. Credentials are stored encrypted."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Connection,
    Select,
    and_,
    bindparam,
    case,
    delete,
    insert,
    or_,
    select,
    update,
)

from post_management.adapters.crypto import FernetBox, InvalidKeys
from post_management.adapters.db.post_repository import _from_row as post_from_row
from post_management.adapters.db.schema import accounts, posts
from post_management.adapters.db.stored_credentials import seal, unseal
from post_management.domain.account import Account, AccountState
from post_management.domain.post import Post
from post_management.ports.repositories import Cursor

log = logging.getLogger(__name__)
# Built once (a statement built per call costs more than running it).
_GET = select(accounts).where(accounts.c.id == bindparam("account_id"))
_GET_FOR_UPDATE = _GET.with_for_update()
_OF_POST = (
    select(posts.c.account_id)
    .where(posts.c.id == bindparam("post_id"), posts.c.user_id == bindparam("user_id"))
    .scalar_subquery()
)
# The account of the user's post, locked inside a materialized CTE: its row lock is
# taken before the outer query can return a row, and so before the outer FOR UPDATE
# locks the post (which it reads again if it changed while the locks were awaited).
_LOCKED_ACCOUNT = (
    select(accounts)
    .where(accounts.c.id == _OF_POST)
    .with_for_update()
    .cte("locked_account")
    .prefix_with("MATERIALIZED")
)
_LOCK_WITH_POST = (
    select(
        *(column.label(f"a_{column.name}") for column in _LOCKED_ACCOUNT.c),
        *(column.label(f"p_{column.name}") for column in posts.c),
    )
    .select_from(_LOCKED_ACCOUNT)
    .join(posts, posts.c.id == bindparam("post_id"))
    .with_for_update(of=posts)
)
_INSERT = insert(accounts)
# SET takes the columns the parameters name; a new budget re-opens the month, any
# other change leaves the engine's mark (x_budget_reached_month).
_SAVE = (
    update(accounts)
    .where(accounts.c.id == bindparam("where_id"), accounts.c.version == bindparam("where_version"))
    .values(
        x_budget_reached_month=case(
            (accounts.c.x_monthly_budget_micros.is_distinct_from(bindparam("new_budget")), None),
            else_=accounts.c.x_budget_reached_month,
        )
    )
)
_DELETE = delete(accounts).where(
    accounts.c.id == bindparam("account_id"), accounts.c.version == bindparam("version")
)


class _Prefixed(Mapping[str, Any]):
    """The columns of one table in a row whose names carry `prefix`."""

    def __init__(self, row: Mapping[Any, Any], prefix: str) -> None:
        self._row, self._prefix = row, prefix

    def __getitem__(self, key: str) -> Any:
        return self._row[self._prefix + key]

    def __iter__(self) -> Iterator[str]:
        n = len(self._prefix)
        return (key[n:] for key in self._row if key.startswith(self._prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def account_from_row(row: Mapping[Any, Any], box: FernetBox) -> Account:
    """An account row (its credentials unsealed with `box`) as the domain's Account."""
    credentials, unreadable = None, False
    if row["credentials_encrypted"] is not None:
        try:
            credentials = unseal(box, row["credentials_encrypted"])
        except InvalidKeys:
            # One account's undecryptable tokens must not break every read of it.
            log.warning("the stored credentials of account %s cannot be read", row["id"])
            unreadable = True
    return Account(
        id=row["id"],
        user_id=row["user_id"],
        handle=row["handle"],
        x_user_id=row["x_user_id"],
        timezone=row["timezone"],
        state=AccountState(row["state"]),
        posting_rules=dict(row["posting_rules"]),
        credentials=credentials,
        credentials_unreadable=unreadable,
        version=row["version"],
        x_monthly_budget_micros=row["x_monthly_budget_micros"],
        x_budget_reached_month=row["x_budget_reached_month"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def account_row(account: Account, box: FernetBox) -> dict[str, Any]:
    """An account's row, its credentials sealed with `box`."""
    encrypted = None
    if account.credentials is not None:
        encrypted = seal(box, account.credentials)
    return {
        "id": account.id,
        "user_id": account.user_id,
        "handle": account.handle,
        "x_user_id": account.x_user_id,
        "timezone": account.timezone,
        "state": account.state.value,
        "posting_rules": account.posting_rules,
        "credentials_encrypted": encrypted,
        "version": account.version,
        "x_monthly_budget_micros": account.x_monthly_budget_micros,
        "created_at": account.created_at,
        "updated_at": account.updated_at,
    }


def save_params(account: Account, expected_version: int, box: FernetBox) -> dict[str, Any]:
    """The parameters of _SAVE: every column but the id and the creation time, the
    next version, and the row to change (only at `expected_version`)."""
    row = account_row(account, box)
    del row["id"], row["created_at"]
    if account.credentials is None and account.credentials_unreadable:
        del row["credentials_encrypted"]  # keep what no key here can read
    row["version"] = expected_version + 1
    row["new_budget"] = account.x_monthly_budget_micros
    row["where_id"], row["where_version"] = account.id, expected_version
    return row


def list_statement(user_id: str | None, after: Cursor | None, limit: int) -> Select[Any]:
    """ListAccounts' page: the user's accounts (everyone's for None) after the cursor,
    in creation order."""
    query = select(accounts)
    if user_id is not None:
        query = query.where(accounts.c.user_id == user_id)
    if after is not None:
        query = query.where(
            or_(
                accounts.c.created_at > after.created_at,
                and_(accounts.c.created_at == after.created_at, accounts.c.id > after.id),
            )
        )
    return query.order_by(accounts.c.created_at, accounts.c.id).limit(limit)


class SqlAccountRepository:
    def __init__(self, connection: Connection, box: FernetBox) -> None:
        self._conn = connection
        self._box = box

    def _from_row(self, row: Mapping[Any, Any]) -> Account:
        return account_from_row(row, self._box)

    def add(self, account: Account) -> None:
        self._conn.execute(_INSERT, account_row(account, self._box))

    def get(self, account_id: UUID, *, for_update: bool = False) -> Account | None:
        query = _GET_FOR_UPDATE if for_update else _GET
        row = self._conn.execute(query, {"account_id": account_id}).mappings().first()
        return self._from_row(row) if row else None

    def lock_with_post(self, post_id: UUID, user_id: str) -> tuple[Account, Post] | None:
        params = {"post_id": post_id, "user_id": user_id}
        row = self._conn.execute(_LOCK_WITH_POST, params).mappings().first()
        if row is None:
            return None
        return self._from_row(_Prefixed(row, "a_")), post_from_row(_Prefixed(row, "p_"))

    def find_by_x_user(self, user_id: str, x_user_id: str) -> Account | None:
        query = select(accounts).where(
            accounts.c.user_id == user_id, accounts.c.x_user_id == x_user_id
        )
        row = self._conn.execute(query).mappings().first()
        return self._from_row(row) if row else None

    def list(self, user_id: str | None, after: Cursor | None, limit: int) -> list[Account]:
        query = list_statement(user_id, after, limit)
        return [self._from_row(row) for row in self._conn.execute(query).mappings()]

    def save(self, account: Account, expected_version: int) -> bool:
        result = self._conn.execute(_SAVE, save_params(account, expected_version, self._box))
        if result.rowcount == 1:
            account.version = expected_version + 1
            return True
        return False

    def delete(self, account_id: UUID, expected_version: int) -> bool:
        values = {"account_id": account_id, "version": expected_version}
        return self._conn.execute(_DELETE, values).rowcount == 1
