"""The correlation id of the current unit of work (an RPC, a dispatcher tick).

Kept in a context variable so it follows `asyncio.to_thread` and copied contexts
into worker threads, and bound into structlog's context so every log line has it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

import structlog

HEADER = "x-request-id"
# Ids from callers end up in logs and Kafka headers: keep them short and printable.
_VALID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

_current: ContextVar[str] = ContextVar("correlation_id", default="")


def new_id() -> str:
    """32 hex digits. Ids only tell calls apart, they guard nothing: no system call for
    randomness per call (uuid4 reads os.urandom)."""
    return f"{random.getrandbits(128):032x}"


def accept(candidate: str | None) -> str:
    """The caller's id when it is usable, else a fresh one."""
    if candidate and _VALID.fullmatch(candidate):
        return candidate
    return new_id()


def current() -> str:
    return _current.get()


Bound = tuple[Token[str], Mapping[str, Token[Any]]]


def enter(correlation_id: str, **fields: object) -> Bound:
    """`correlated` without a context manager, for the per-call path (a generator
    context manager costs several times the binding): hand the result to `leave`."""
    token = _current.set(correlation_id)
    return token, structlog.contextvars.bind_contextvars(correlation_id=correlation_id, **fields)


def leave(bound: Bound) -> None:
    token, fields = bound
    structlog.contextvars.reset_contextvars(**fields)
    _current.reset(token)


@contextmanager
def correlated(correlation_id: str | None = None, **fields: object) -> Iterator[str]:
    """Make `correlation_id` (or a new one) current, with extra log fields, for a block."""
    value = correlation_id or new_id()
    bound = enter(value, **fields)
    try:
        yield value
    finally:
        leave(bound)
