"""Account use cases: register an X account, read, list, update, delete, resume."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from post_management.domain.account import Account, Credentials, account_not_found
from post_management.domain.auth import Principal, Role
from post_management.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
)
from post_management.domain.posting_rules import PostingRules, posting_rules_from_json
from post_management.domain.reasons import Reason
from post_management.domain.timezones import load_zone
from post_management.ports.async_unit_of_work import AsyncUnitOfWork, AsyncUnitOfWorkFactory
from post_management.ports.repositories import DuplicateKey
from post_management.ports.support import Clock
from post_management.services.shared import idempotency
from post_management.services.shared.commands import AsyncCommand, AsyncCommandRunner, RequestKey
from post_management.services.shared.common import ensure_not_erased
from post_management.services.shared.pagination import (
    Page,
    by_creation,
    decode_token,
    page_of,
    page_size,
)

_HANDLE = re.compile(r"[A-Za-z0-9_]{1,15}")
_X_USER_ID = re.compile(r"[0-9]{1,19}")
_MAX_TOKEN_LENGTH = 512


# 1,000,000 USD in micro-dollars: far above any account's month.
MAX_BUDGET_MICROS = 10**12


@dataclass(frozen=True)
class AccountFields:
    """Writable account fields, read at the edge (`read_fields`); None leaves a field as
    it is (on update)."""

    handle: str | None = None
    x_user_id: str | None = None
    timezone: ZoneInfo | None = None
    posting_rules: PostingRules | None = None
    credentials: Credentials | None = None
    budget: BudgetChange | None = None
    # Every bad field `read_fields` found, in one error; the use case raises it only
    # once it knows the caller may act for the account (a stranger learns nothing).
    invalid: InvalidArgument | None = None


@dataclass(frozen=True)
class BudgetChange:
    """The new monthly X budget in micro-dollars; None removes the budget."""

    micros: int | None


def read_fields(
    *,
    handle: str | None = None,
    x_user_id: str | None = None,
    timezone: str | None = None,
    posting_rules: Mapping[str, Any] | None = None,
    credentials: Credentials | None = None,
    budget: BudgetChange | None = None,
    prefix: str = "account",
) -> AccountFields:
    """The fields read completely into typed values; what is wrong with them is
    collected into one InvalidArgument (`AccountFields.invalid`) instead of raised.

    The posting rules' sizes must have been checked (`ensure_sizes`) before their
    mapping was built; their contents are read here.
    """
    problems: list[FieldViolation] = []
    micros = budget.micros if budget is not None else None
    if micros is not None and not 0 <= micros <= MAX_BUDGET_MICROS:
        problems.append(
            FieldViolation(
                f"{prefix}.x_monthly_budget_micros",
                f"must be between 0 and {MAX_BUDGET_MICROS} (1,000,000 USD)",
            )
        )
    if handle is not None and not _HANDLE.fullmatch(handle.removeprefix("@")):
        problems.append(
            FieldViolation(f"{prefix}.handle", "must be 1-15 letters, digits or underscores")
        )
    if x_user_id is not None and not _X_USER_ID.fullmatch(x_user_id):
        problems.append(FieldViolation(f"{prefix}.x_user_id", "must be X's numeric user id"))
    zone = None
    if timezone is not None:
        try:
            zone = load_zone(timezone, f"{prefix}.timezone")
        except InvalidArgument as error:
            problems.extend(error.violations)
    if credentials is not None:
        for name, value in (
            ("access_token", credentials.access_token),
            ("access_token_secret", credentials.access_token_secret),
        ):
            if not value or len(value) > _MAX_TOKEN_LENGTH or not value.isprintable():
                problems.append(
                    FieldViolation(
                        f"{prefix}.credentials.{name}",
                        f"must be 1-{_MAX_TOKEN_LENGTH} printable characters",
                    )
                )
    rules = None
    rules_error = None
    if posting_rules is not None:
        try:
            rules = posting_rules_from_json(posting_rules, prefix=f"{prefix}.posting_rules")
        except InvalidArgument as error:
            rules_error = error
    invalid = None
    if problems:
        if rules_error is not None:
            problems.extend(rules_error.violations)
        invalid = InvalidArgument("the account is invalid", violations=problems)
    elif rules_error is not None:
        invalid = rules_error  # its own reason, INVALID_POSTING_RULES
    return AccountFields(
        handle=handle,
        x_user_id=x_user_id,
        timezone=zone,
        posting_rules=rules,
        credentials=credentials,
        budget=budget,
        invalid=invalid,
    )


class AccountService:
    """The account commands, on the asynchronous unit of work: awaited on the serving
    loop, no worker thread."""

    def __init__(self, uow: AsyncUnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._commands = AsyncCommandRunner(uow)
        self._clock = clock

    async def create(
        self, principal: Principal, user_id: str, fields: AccountFields, request_id: str = ""
    ) -> Account:
        principal.ensure_can_act_for(user_id)
        idempotency.check_request_id(request_id)
        missing = [
            FieldViolation(f"account.{name}", "is required")
            for name in ("handle", "x_user_id")
            if not getattr(fields, name)
        ]
        if missing:
            raise InvalidArgument("the account is incomplete", violations=missing)
        if fields.invalid is not None:
            raise fields.invalid
        key = RequestKey.of(
            f"CreateAccount:{user_id}", request_id, {"user_id": user_id, **_fingerprint(fields)}
        )

        async def create(run: AsyncCommand) -> Account:
            await ensure_not_erased(run.uow, user_id)
            assert fields.handle is not None and fields.x_user_id is not None
            now = self._clock.now()
            account = Account(
                id=uuid.uuid4(),
                user_id=user_id,
                handle=fields.handle.removeprefix("@"),
                x_user_id=fields.x_user_id,
                timezone=fields.timezone.key if fields.timezone is not None else "UTC",
                posting_rules=_rules_json(fields.posting_rules) or {},
                credentials=fields.credentials,
                created_at=now,
                updated_at=now,
                x_monthly_budget_micros=fields.budget.micros if fields.budget else None,
            )
            await run.add(account, "account.create")
            return account

        try:
            return await self._commands.run(
                principal, create, request=key, replay=_load, replay_first=True
            )
        except DuplicateKey:
            # Not a concurrent twin of this request: the X account is there already.
            raise AlreadyExists(
                "this X account is already registered for the user",
                reason=Reason.ACCOUNT_EXISTS,
                metadata={"x_user_id": fields.x_user_id or ""},
            ) from None

    async def get(self, principal: Principal, account_id: UUID) -> Account:
        async with self._uow() as uow:
            account = await _load(uow, account_id)
        principal.ensure_can_act_for(account.user_id)
        return account

    async def list(
        self, principal: Principal, user_id: str, size: int, token: str
    ) -> Page[Account]:
        if not user_id and principal.role is Role.USER:
            user_id = principal.subject
        if user_id:
            principal.ensure_can_act_for(user_id)
        limit = page_size(size)
        query = {"user_id": user_id}
        after = decode_token(token, query)
        async with self._uow() as uow:
            accounts = await uow.accounts.list(user_id or None, after, limit + 1)
        return page_of(accounts, limit, query, by_creation)

    async def update(
        self, principal: Principal, account_id: UUID, fields: AccountFields, etag: str = ""
    ) -> Account:
        async def update(run: AsyncCommand) -> Account:
            account = await _load(run.uow, account_id)
            # Whose account first: only its owner learns what the edge found wrong.
            principal.ensure_can_act_for(account.user_id)
            if fields.invalid is not None:
                raise fields.invalid
            run.track(account, etag)
            if fields.handle is not None:
                account.handle = fields.handle.removeprefix("@")
            if fields.x_user_id is not None:
                account.x_user_id = fields.x_user_id
            if fields.timezone is not None:
                account.timezone = fields.timezone.key
            if fields.posting_rules is not None:
                account.posting_rules = fields.posting_rules.to_json()
            if fields.credentials is not None:
                account.credentials = fields.credentials
            if fields.budget is not None:
                account.x_monthly_budget_micros = fields.budget.micros
            account.updated_at = self._clock.now()
            await run.save(account, "account.update")
            return account

        try:
            return await self._commands.run(principal, update)
        except DuplicateKey:
            raise AlreadyExists(
                "another account of this user has that X user id", reason=Reason.ACCOUNT_EXISTS
            ) from None

    async def delete(self, principal: Principal, account_id: UUID, etag: str = "") -> None:
        async def delete(run: AsyncCommand) -> None:
            account = run.track(await _load(run.uow, account_id, for_update=True), etag)
            active = await run.uow.posts.count_active_for_account(account.id)
            if active:
                raise FailedPrecondition(
                    f"the account has {active} scheduled or publishing posts; cancel them first",
                    reason=Reason.ACCOUNT_HAS_ACTIVE_POSTS,
                    metadata={"active_posts": str(active)},
                )
            await run.delete(account, "account.delete")

        await self._commands.run(principal, delete)

    async def resume(self, principal: Principal, account_id: UUID) -> Account:
        async def resume(run: AsyncCommand) -> Account:
            account = run.track(await _load(run.uow, account_id, for_update=True))
            if account.resume(self._clock.now()):
                await run.save(account, "account.resume")
            return account

        return await self._commands.run(principal, resume)


def _fingerprint(fields: AccountFields) -> dict[str, Any]:
    """The fields as the request id's digest has always read them: the zone by its
    name, the rules in their JSON form."""
    data: dict[str, Any] = {
        "handle": fields.handle,
        "x_user_id": fields.x_user_id,
        "timezone": fields.timezone.key if fields.timezone is not None else None,
        "posting_rules": _rules_json(fields.posting_rules),
        # Hash secrets rather than keep them, even inside a digest's input.
        "credentials": idempotency.request_hash(
            asdict(fields.credentials) if fields.credentials is not None else {}
        ),
    }
    if fields.budget is not None:  # request ids stored before budgets existed still match
        data["budget"] = asdict(fields.budget)
    return data


def _rules_json(rules: PostingRules | None) -> dict[str, Any] | None:
    return rules.to_json() if rules is not None else None


async def _load(uow: AsyncUnitOfWork, account_id: UUID, *, for_update: bool = False) -> Account:
    account = await uow.accounts.get(account_id, for_update=for_update)
    if account is None:
        raise account_not_found(account_id)
    return account
