"""An account whose stored X credentials no configured key decrypts (an old key removed
from ENCRYPTION_KEYS too early) still reads and updates over gRPC, and an update keeps
the stored credentials for when the key comes back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet
from xmp.posts.v1 import account_pb2, account_service_pb2, account_service_pb2_grpc

from post_management.adapters.crypto import FernetBox
from post_management.adapters.db.engine import make_engine
from post_management.adapters.db.unit_of_work import SqlUnitOfWork
from post_management.domain.account import Account, Credentials
from post_management.domain.privacy import Pseudonyms
from tests.conftest import truncate
from tests.support.harness import RunningServer, auth, settings_for


def test_accounts_with_unreadable_credentials_read_and_keep_them(
    machine_database: str, tmp_path: Path
) -> None:
    truncate(machine_database)
    old_key = Fernet.generate_key().decode()
    engine = make_engine(machine_database)
    now = datetime.now(UTC)
    account = Account(uuid.uuid4(), "alice", "alice_x", "4242", now, now,
                      credentials=Credentials("token", "secret"))  # fmt: skip
    with SqlUnitOfWork(engine, FernetBox([old_key]), Pseudonyms(b"k" * 32)) as uow:
        uow.accounts.add(account)
        uow.commit()
    # The server knows only a new key.
    server = RunningServer(
        settings_for(machine_database, tmp_path, encryption_keys=Fernet.generate_key().decode())
    )
    try:
        stub = account_service_pb2_grpc.AccountServiceStub(server.channel())
        metadata = auth(server.token("alice"))
        listed = stub.ListAccounts(
            account_service_pb2.ListAccountsRequest(user_id="alice"), metadata=metadata
        )
        assert [a.id for a in listed.accounts] == [str(account.id)]
        got = stub.GetAccount(
            account_service_pb2.GetAccountRequest(account_id=str(account.id)), metadata=metadata
        )
        assert got.has_credentials  # stored, only not readable here
        updated = stub.UpdateAccount(
            account_service_pb2.UpdateAccountRequest(
                account=account_pb2.Account(id=str(account.id), handle="renamed"),
                update_mask={"paths": ["handle"]},
            ),
            metadata=metadata,
        )
        assert updated.handle == "renamed" and updated.has_credentials
    finally:
        server.stop()
    # With the old key back, the credentials are still there.
    with SqlUnitOfWork(engine, FernetBox([old_key]), Pseudonyms(b"k" * 32)) as uow:
        stored = uow.accounts.get(account.id)
    engine.dispose()
    assert stored is not None and stored.handle == "renamed"
    assert stored.credentials == Credentials("token", "secret")
