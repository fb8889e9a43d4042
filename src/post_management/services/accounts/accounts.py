"""Account use cases: register an X account, read, list, update, delete, resume."""

from __future__ import annotations

import dataclasses
import re
import uuid
from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

from post_management.domain.account import Account, Credentials
from post_management.domain.auth import Principal, Role
from post_management.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from post_management.domain.posting_rules import posting_rules_from_json
from post_management.domain.reasons import Reason
from post_management.domain.timezones import load_zone
from post_management.ports.repositories import Cursor, DuplicateKey
from post_management.ports.support import Clock
from post_management.ports.unit_of_work import UnitOfWork, UnitOfWorkFactory
from post_management.services.shared import idempotency
from post_management.services.shared.commands import Command, CommandRunner, RequestKey
from post_management.services.shared.common import ensure_not_erased
from post_management.services.shared.pagination import Page, decode_token, encode_token, page_size

_HANDLE = re.compile(r"[A-Za-z0-9_]{1,15}")
_X_USER_ID = re.compile(r"[0-9]{1,19}")
_MAX_TOKEN_LENGTH = 512


# 1,000,000 USD in micro-dollars: far above any account's month.
MAX_BUDGET_MICROS = 10**12


@dataclass(frozen=True)
class AccountFields:
    """Writable account fields; None leaves a field as it is (on update)."""

    handle: str | None = None
    x_user_id: str | None = None
    timezone: str | None = None
    posting_rules: dict[str, Any] | None = None
    credentials: Credentials | None = None
    budget: BudgetChange | None = None


@dataclass(frozen=True)
class BudgetChange:
    """The new monthly X budget in micro-dollars; None removes the budget."""

    micros: int | None


def validate_fields(fields: AccountFields, prefix: str = "account") -> None:
    problems: list[FieldViolation] = []
    budget = fields.budget.micros if fields.budget is not None else None
    if budget is not None and not 0 <= budget <= MAX_BUDGET_MICROS:
        problems.append(
            FieldViolation(
                f"{prefix}.x_monthly_budget_micros",
                f"must be between 0 and {MAX_BUDGET_MICROS} (1,000,000 USD)",
            )
        )
    if fields.handle is not None and not _HANDLE.fullmatch(fields.handle.removeprefix("@")):
        problems.append(
            FieldViolation(f"{prefix}.handle", "must be 1-15 letters, digits or underscores")
        )
    if fields.x_user_id is not None and not _X_USER_ID.fullmatch(fields.x_user_id):
        problems.append(FieldViolation(f"{prefix}.x_user_id", "must be X's numeric user id"))
    if fields.timezone is not None:
        try:
            load_zone(fields.timezone, f"{prefix}.timezone")
        except InvalidArgument as error:
            problems.extend(error.violations)
    if fields.credentials is not None:
        for name, value in (
            ("access_token", fields.credentials.access_token),
            ("access_token_secret", fields.credentials.access_token_secret),
        ):
            if not value or len(value) > _MAX_TOKEN_LENGTH or not value.isprintable():
                problems.append(
                    FieldViolation(
                        f"{prefix}.credentials.{name}",
                        f"must be 1-{_MAX_TOKEN_LENGTH} printable characters",
                    )
                )
    if problems:
        raise InvalidArgument("the account is invalid", violations=problems)


def normalized(fields: AccountFields, prefix: str = "account") -> AccountFields:
    """`fields` with posting rules validated and in their canonical JSON form."""
    if fields.posting_rules is None:
        return fields
    rules = posting_rules_from_json(fields.posting_rules, prefix=f"{prefix}.posting_rules")
    return dataclasses.replace(fields, posting_rules=rules.to_json())


class AccountService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._commands = CommandRunner(uow)
        self._clock = clock

    def create(
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
        validate_fields(fields)
        fields = normalized(fields)
        key = RequestKey.of(
            f"CreateAccount:{user_id}", request_id, {"user_id": user_id, **_fingerprint(fields)}
        )

        def create(run: Command[UnitOfWork]) -> Account:
            ensure_not_erased(run.uow, user_id)
            assert fields.handle is not None and fields.x_user_id is not None
            now = self._clock.now()
            account = Account(
                id=uuid.uuid4(),
                user_id=user_id,
                handle=fields.handle.removeprefix("@"),
                x_user_id=fields.x_user_id,
                timezone=fields.timezone or "UTC",
                posting_rules=dict(fields.posting_rules or {}),
                credentials=fields.credentials,
                created_at=now,
                updated_at=now,
                x_monthly_budget_micros=fields.budget.micros if fields.budget else None,
            )
            run.add(account, "account.create")
            return account

        try:
            return self._commands.run(principal, create, request=key, replay=_load)
        except DuplicateKey:
            # Not a concurrent twin of this request: the X account is there already.
            raise AlreadyExists(
                "this X account is already registered for the user",
                reason=Reason.ACCOUNT_EXISTS,
                metadata={"x_user_id": fields.x_user_id or ""},
            ) from None

    def get(self, principal: Principal, account_id: UUID) -> Account:
        with self._uow() as uow:
            account = _load(uow, account_id)
        principal.ensure_can_act_for(account.user_id)
        return account

    def list(self, principal: Principal, user_id: str, size: int, token: str) -> Page[Account]:
        if not user_id and principal.role is Role.USER:
            user_id = principal.subject
        if user_id:
            principal.ensure_can_act_for(user_id)
        limit = page_size(size)
        query = {"user_id": user_id}
        after = decode_token(token, query)
        with self._uow() as uow:
            accounts = uow.accounts.list(user_id or None, after, limit + 1)
        next_token = ""
        if len(accounts) > limit:
            accounts = accounts[:limit]
            next_token = encode_token(Cursor(accounts[-1].created_at, accounts[-1].id), query)
        return Page(accounts, next_token)

    def update(
        self, principal: Principal, account_id: UUID, fields: AccountFields, etag: str = ""
    ) -> Account:
        def update(run: Command[UnitOfWork]) -> Account:
            account = _load(run.uow, account_id)
            # Whose account first: a stranger's request costs no validation.
            principal.ensure_can_act_for(account.user_id)
            validate_fields(fields)
            changes = normalized(fields)
            run.track(account, etag)
            if changes.handle is not None:
                account.handle = changes.handle.removeprefix("@")
            if changes.x_user_id is not None:
                account.x_user_id = changes.x_user_id
            if changes.timezone is not None:
                account.timezone = changes.timezone
            if changes.posting_rules is not None:
                account.posting_rules = dict(changes.posting_rules)
            if changes.credentials is not None:
                account.credentials = changes.credentials
            if changes.budget is not None:
                account.x_monthly_budget_micros = changes.budget.micros
            account.updated_at = self._clock.now()
            run.save(account, "account.update")
            return account

        try:
            return self._commands.run(principal, update)
        except DuplicateKey:
            raise AlreadyExists(
                "another account of this user has that X user id", reason=Reason.ACCOUNT_EXISTS
            ) from None

    def delete(self, principal: Principal, account_id: UUID, etag: str = "") -> None:
        def delete(run: Command[UnitOfWork]) -> None:
            account = run.track(_load(run.uow, account_id, for_update=True), etag)
            active = run.uow.posts.count_active_for_account(account.id)
            if active:
                raise FailedPrecondition(
                    f"the account has {active} scheduled or publishing posts; cancel them first",
                    reason=Reason.ACCOUNT_HAS_ACTIVE_POSTS,
                    metadata={"active_posts": str(active)},
                )
            run.delete(account, "account.delete")

        self._commands.run(principal, delete)

    def resume(self, principal: Principal, account_id: UUID) -> Account:
        def resume(run: Command[UnitOfWork]) -> Account:
            account = run.track(_load(run.uow, account_id, for_update=True))
            if account.resume(self._clock.now()):
                run.save(account, "account.resume")
            return account

        return self._commands.run(principal, resume)


def _fingerprint(fields: AccountFields) -> dict[str, Any]:
    data = asdict(fields)
    # Hash secrets rather than keep them, even inside a digest's input.
    data["credentials"] = idempotency.request_hash(data["credentials"] or {})
    if data["budget"] is None:
        del data["budget"]  # request ids stored before budgets existed still match
    return data


def _load(uow: UnitOfWork, account_id: UUID, *, for_update: bool = False) -> Account:
    account = uow.accounts.get(account_id, for_update=for_update)
    if account is None:
        raise NotFound(
            f"account {account_id} does not exist",
            reason=Reason.ACCOUNT_NOT_FOUND,
            metadata={"account_id": str(account_id)},
        )
    return account
