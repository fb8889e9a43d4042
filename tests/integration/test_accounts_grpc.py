"""AccountService over real gRPC: CRUD, credentials encrypted and never returned."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import text
from xmp.posts.v1 import account_pb2, account_service_pb2

from post_management.adapters.db.engine import make_engine
from post_management.domain.auth import Role
from tests.integration.grpc_fixtures import Client, error_details
from tests.support.harness import RunningServer

TOKEN = "1234567890-AccessTokenValueThatMustStaySecret"
SECRET = "AccessTokenSecretValueThatMustStaySecret"


def _raw_credentials(server: RunningServer, account_id: str) -> bytes:
    engine = make_engine(server.database_url)
    with engine.connect() as connection:
        value = connection.execute(
            text("SELECT credentials_encrypted FROM accounts WHERE id = :id"), {"id": account_id}
        ).scalar_one()
    engine.dispose()
    return bytes(value)


def test_account_crud_with_rules(alice: Client) -> None:
    rules = account_pb2.PostingRules(
        min_interval_minutes=30,
        max_posts_per_day=10,
        quiet_hours=account_pb2.QuietHours(start="22:00", end="07:00"),
        slots=[account_pb2.TimeSlot(weekdays=[1, 2, 3, 4, 5], time="09:00")],
    )
    created = alice.create_account("42", timezone="Europe/Berlin", posting_rules=rules)
    assert created.state == account_pb2.ACCOUNT_STATE_ACTIVE
    assert created.posting_rules == rules
    assert created.timezone == "Europe/Berlin"

    got = alice.accounts.GetAccount(
        account_service_pb2.GetAccountRequest(account_id=created.id), metadata=alice.metadata
    )
    assert got == created

    updated = alice.accounts.UpdateAccount(
        account_service_pb2.UpdateAccountRequest(
            account=account_pb2.Account(id=created.id, handle="renamed", etag=created.etag),
            update_mask=FieldMask(paths=["handle"]),
        ),
        metadata=alice.metadata,
    )
    assert updated.handle == "renamed" and updated.posting_rules == rules

    listed = alice.accounts.ListAccounts(
        account_service_pb2.ListAccountsRequest(), metadata=alice.metadata
    )
    assert [a.id for a in listed.accounts] == [created.id]

    alice.accounts.DeleteAccount(
        account_service_pb2.DeleteAccountRequest(account_id=created.id), metadata=alice.metadata
    )
    with pytest.raises(grpc.RpcError) as caught:
        alice.accounts.GetAccount(
            account_service_pb2.GetAccountRequest(account_id=created.id), metadata=alice.metadata
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_credentials_are_encrypted_and_never_returned(alice: Client, clean: RunningServer) -> None:
    created = alice.create_account(
        "7",
        credentials=account_pb2.XCredentials(access_token=TOKEN, access_token_secret=SECRET),
    )
    assert created.has_credentials
    assert not created.HasField("credentials")
    raw = _raw_credentials(clean, created.id)
    assert TOKEN.encode() not in raw and SECRET.encode() not in raw
    got = alice.accounts.GetAccount(
        account_service_pb2.GetAccountRequest(account_id=created.id), metadata=alice.metadata
    )
    assert got.has_credentials and not got.HasField("credentials")
    assert TOKEN not in str(got) and SECRET not in str(got)


def test_duplicate_registration_is_already_exists(alice: Client) -> None:
    alice.create_account("99")
    with pytest.raises(grpc.RpcError) as caught:
        alice.create_account("99")
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_details(caught.value)[0] == "ACCOUNT_EXISTS"


def test_create_account_is_idempotent_with_request_id(alice: Client) -> None:
    request = account_service_pb2.CreateAccountRequest(
        account=account_pb2.Account(user_id="alice", handle="h", x_user_id="5"),
        request_id=str(uuid.uuid4()),
    )
    first = alice.accounts.CreateAccount(request, metadata=alice.metadata)
    again = alice.accounts.CreateAccount(request, metadata=alice.metadata)
    assert first.id == again.id


def test_request_id_works_for_the_longest_user_id(clean: RunningServer) -> None:
    # The idempotency scope is "CreateAccount:" + the user id.
    service = Client(clean, "crm", Role.SERVICE)
    request = account_service_pb2.CreateAccountRequest(
        account=account_pb2.Account(user_id="u" * 128, handle="h", x_user_id="5"),
        request_id=str(uuid.uuid4()),
    )
    first = service.accounts.CreateAccount(request, metadata=service.metadata)
    again = service.accounts.CreateAccount(request, metadata=service.metadata)
    assert first.id == again.id
    service.channel.close()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"handle": "not a handle!", "x_user_id": "1"}, "account.handle"),
        ({"handle": "ok", "x_user_id": "abc"}, "account.x_user_id"),
        # "$" would also match before a trailing newline.
        ({"handle": "ok\n", "x_user_id": "1"}, "account.handle"),
        ({"handle": "ok", "x_user_id": "123\n"}, "account.x_user_id"),
        ({"handle": "ok", "x_user_id": "1", "timezone": "Mars/Base"}, "account.timezone"),
        ({"handle": "ok", "x_user_id": "1", "timezone": "../../etc/passwd"}, "account.timezone"),
        # Directories and files of the zone database that are not zones, and a name too
        # long for a file name.
        ({"handle": "ok", "x_user_id": "1", "timezone": "America"}, "account.timezone"),
        ({"handle": "ok", "x_user_id": "1", "timezone": "Etc"}, "account.timezone"),
        ({"handle": "ok", "x_user_id": "1", "timezone": "__pycache__"}, "account.timezone"),
        ({"handle": "ok", "x_user_id": "1", "timezone": "posixrules"}, "account.timezone"),
        ({"handle": "ok", "x_user_id": "1", "timezone": "A" * 300}, "account.timezone"),
        ({"x_user_id": "1"}, "account.handle"),
    ],
)
def test_bad_account_input(alice: Client, fields: dict[str, str], field: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        alice.accounts.CreateAccount(
            account_service_pb2.CreateAccountRequest(
                account=account_pb2.Account(user_id="alice", **fields)
            ),
            metadata=alice.metadata,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in [v[0] for v in error_details(caught.value)[1]]


def test_account_with_active_posts_cannot_be_deleted(alice: Client, clean: RunningServer) -> None:
    account = alice.create_account()
    post = alice.create_post(account.id)
    engine = make_engine(clean.database_url)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE posts SET state = 'SCHEDULED', due_at = now() WHERE id = :id"),
            {"id": post.id},
        )
    engine.dispose()
    with pytest.raises(grpc.RpcError) as caught:
        alice.accounts.DeleteAccount(
            account_service_pb2.DeleteAccountRequest(account_id=account.id),
            metadata=alice.metadata,
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(caught.value)[0] == "ACCOUNT_HAS_ACTIVE_POSTS"


def test_resume_a_paused_account(alice: Client, clean: RunningServer) -> None:
    account = alice.create_account()
    engine = make_engine(clean.database_url)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE accounts SET state = 'SUSPENDED' WHERE id = :id"), {"id": account.id}
        )
    engine.dispose()
    resumed = alice.accounts.ResumeAccount(
        account_service_pb2.ResumeAccountRequest(account_id=account.id), metadata=alice.metadata
    )
    assert resumed.state == account_pb2.ACCOUNT_STATE_ACTIVE


def test_foreign_accounts_are_permission_denied(alice: Client, bob: Client) -> None:
    account = alice.create_account()
    calls = [
        lambda: bob.accounts.GetAccount(
            account_service_pb2.GetAccountRequest(account_id=account.id), metadata=bob.metadata
        ),
        lambda: bob.accounts.UpdateAccount(
            account_service_pb2.UpdateAccountRequest(
                account=account_pb2.Account(id=account.id, handle="stolen")
            ),
            metadata=bob.metadata,
        ),
        lambda: bob.accounts.DeleteAccount(
            account_service_pb2.DeleteAccountRequest(account_id=account.id),
            metadata=bob.metadata,
        ),
        lambda: bob.accounts.ResumeAccount(
            account_service_pb2.ResumeAccountRequest(account_id=account.id),
            metadata=bob.metadata,
        ),
        lambda: bob.accounts.ListAccounts(
            account_service_pb2.ListAccountsRequest(user_id="alice"), metadata=bob.metadata
        ),
        lambda: bob.accounts.CreateAccount(
            account_service_pb2.CreateAccountRequest(
                account=account_pb2.Account(user_id="alice", handle="x", x_user_id="3")
            ),
            metadata=bob.metadata,
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
