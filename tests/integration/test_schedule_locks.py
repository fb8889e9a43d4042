"""The lock SchedulePost takes on PostgreSQL: the account's row, then the post's, in
one statement, and the post as it stands once both are held."""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from post_management.adapters.crypto import FernetBox
from post_management.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from post_management.domain.account import Account
from post_management.domain.post import Post
from post_management.domain.privacy import Pseudonyms
from tests.contract.builders import a_post, an_account, store


def _uow(engine: Engine) -> SqlUnitOfWorkFactory:
    box = FernetBox([Fernet.generate_key().decode()])
    return SqlUnitOfWorkFactory(engine, box, Pseudonyms(secrets.token_bytes(32)))


def test_the_account_is_locked_before_the_post_and_the_post_read_after(engine: Engine) -> None:
    uow = _uow(engine)
    now = datetime.now(UTC)
    account = an_account(now)
    post = a_post(account, now, text="before")
    store(uow, account, post)
    result: list[tuple[Account, Post] | None] = []
    entered = threading.Event()

    def lock() -> None:
        with uow() as work:
            entered.set()
            result.append(work.accounts.lock_with_post(post.id, "alice"))
            work.commit()

    with engine.connect() as holder:
        holder.execute(text("SELECT 1 FROM accounts WHERE id = :id FOR UPDATE"), {"id": account.id})
        waiter = threading.Thread(target=lock)
        waiter.start()
        assert entered.wait(10)
        waiter.join(timeout=1.0)
        assert waiter.is_alive()  # waits for the account's lock
        with engine.connect() as other:
            # The post's row is not locked yet: the account's lock comes first.
            other.execute(
                text("SELECT 1 FROM posts WHERE id = :id FOR UPDATE NOWAIT"), {"id": post.id}
            )
            other.execute(
                text("UPDATE posts SET text = 'after', version = version + 1 WHERE id = :id"),
                {"id": post.id},
            )
            other.commit()
        holder.commit()
    waiter.join(timeout=10)
    assert not waiter.is_alive()
    (locked,) = result
    assert locked is not None
    _, read = locked
    assert (read.text, read.version) == ("after", 2)  # the post as it stands once locked


def test_both_rows_stay_locked_until_the_transaction_ends(engine: Engine) -> None:
    uow = _uow(engine)
    now = datetime.now(UTC)
    account = an_account(now)
    post = a_post(account, now)
    store(uow, account, post)
    with uow() as work:
        assert work.accounts.lock_with_post(post.id, "alice") is not None
        with engine.connect() as other:
            for table, row_id in (("accounts", account.id), ("posts", post.id)):
                with pytest.raises(OperationalError, match="could not obtain lock"):
                    other.execute(
                        text(f"SELECT 1 FROM {table} WHERE id = :id FOR UPDATE NOWAIT"),  # noqa: S608
                        {"id": row_id},
                    )
                other.rollback()
