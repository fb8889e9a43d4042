"""AccountService over gRPC. Credentials go in, never out."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import empty_pb2
from xmp.posts.v1 import account_pb2, account_service_pb2, account_service_pb2_grpc

from post_management.domain.account import Credentials
from post_management.domain.errors import InvalidArgument
from post_management.domain.posting_rules import ensure_sizes
from post_management.domain.reasons import Reason
from post_management.entrypoints.grpc.edge import current_principal
from post_management.entrypoints.grpc.mapping import (
    account_to_proto,
    checked_user_id,
    mask_paths,
    parse_uuid,
    posting_rules_to_dict,
    required_user_id,
)
from post_management.entrypoints.grpc.privacy_servicer import PrivacyMethods
from post_management.services.accounts.accounts import (
    AccountFields,
    AccountService,
    BudgetChange,
    read_fields,
)
from post_management.services.privacy.privacy import PrivacyService

Context = grpc.aio.ServicerContext[Any, Any]
WRITABLE = frozenset(
    {"handle", "x_user_id", "credentials", "posting_rules", "timezone", "x_monthly_budget_micros"}
)


def _fields(message: account_pb2.Account, paths: set[str]) -> AccountFields:
    """The fields read into typed values: sizes are refused here and now, the
    contents' findings ride along as one error (`AccountFields.invalid`)."""
    if "posting_rules" in paths:
        # By length first: a huge rule set is refused before it is converted.
        slots = message.posting_rules.slots
        ensure_sizes(slots, (slot.weekdays for slot in slots), "account.posting_rules")
    credentials = None
    if "credentials" in paths:
        credentials = Credentials(
            message.credentials.access_token, message.credentials.access_token_secret
        )
    return read_fields(
        handle=message.handle if "handle" in paths else None,
        x_user_id=message.x_user_id if "x_user_id" in paths else None,
        timezone=message.timezone if "timezone" in paths else None,
        posting_rules=posting_rules_to_dict(message.posting_rules)
        if "posting_rules" in paths
        else None,
        credentials=credentials,
        budget=_budget(message) if "x_monthly_budget_micros" in paths else None,
    )


def _budget(message: account_pb2.Account) -> BudgetChange:
    """Named in the mask but unset: the budget is removed."""
    if message.HasField("x_monthly_budget_micros"):
        return BudgetChange(message.x_monthly_budget_micros)
    return BudgetChange(None)


def _set_paths(message: account_pb2.Account) -> set[str]:
    return {field.name for field, _ in message.ListFields() if field.name in WRITABLE}


class AccountServicer(PrivacyMethods, account_service_pb2_grpc.AccountServiceServicer):
    def __init__(self, accounts: AccountService, privacy: PrivacyService) -> None:
        self._accounts = accounts
        self._privacy = privacy

    async def CreateAccount(
        self, request: account_service_pb2.CreateAccountRequest, context: Context
    ) -> account_pb2.Account:
        if not request.HasField("account"):
            raise InvalidArgument.for_field("account", "is required", reason=Reason.MISSING_FIELD)
        message = request.account
        user_id = required_user_id(message.user_id, "account.user_id")
        fields = _fields(message, _set_paths(message))
        account = await self._accounts.create(
            current_principal(), user_id, fields, request.request_id
        )
        return account_to_proto(account)

    async def GetAccount(
        self, request: account_service_pb2.GetAccountRequest, context: Context
    ) -> account_pb2.Account:
        account_id = parse_uuid(request.account_id, "account_id")
        account = await self._accounts.get(current_principal(), account_id)
        return account_to_proto(account)

    async def ListAccounts(
        self, request: account_service_pb2.ListAccountsRequest, context: Context
    ) -> account_service_pb2.ListAccountsResponse:
        user_id = checked_user_id(request.user_id) if request.user_id else ""
        page = await self._accounts.list(
            current_principal(), user_id, request.page_size, request.page_token
        )
        return account_service_pb2.ListAccountsResponse(
            accounts=[account_to_proto(account) for account in page.items],
            next_page_token=page.next_page_token,
        )

    async def UpdateAccount(
        self, request: account_service_pb2.UpdateAccountRequest, context: Context
    ) -> account_pb2.Account:
        if not request.HasField("account"):
            raise InvalidArgument.for_field("account", "is required", reason=Reason.MISSING_FIELD)
        message = request.account
        account_id = parse_uuid(message.id, "account.id")
        paths = mask_paths(request.update_mask, WRITABLE, "account") or _set_paths(message)
        account = await self._accounts.update(
            current_principal(), account_id, _fields(message, paths), message.etag
        )
        return account_to_proto(account)

    async def DeleteAccount(
        self, request: account_service_pb2.DeleteAccountRequest, context: Context
    ) -> empty_pb2.Empty:
        account_id = parse_uuid(request.account_id, "account_id")
        await self._accounts.delete(current_principal(), account_id, request.etag)
        return empty_pb2.Empty()

    async def ResumeAccount(
        self, request: account_service_pb2.ResumeAccountRequest, context: Context
    ) -> account_pb2.Account:
        account_id = parse_uuid(request.account_id, "account_id")
        account = await self._accounts.resume(current_principal(), account_id)
        return account_to_proto(account)
