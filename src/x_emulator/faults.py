"""Faults injected by tests for the next N requests matching method and path."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    STATUS = "status"  # answer `status` without acting (or after acting, with `accept`)
    DELAY = "delay"  # wait `delay_seconds`, then serve normally
    TIMEOUT = "timeout"  # hang until the client gives up (or the server stops)
    ACCEPT_THEN_DROP = "accept_then_drop"  # act, then close the connection unanswered
    # act only after `delay_seconds`, even when the client gave up meanwhile; answer
    # then if it still waits (X finishing a request after its caller's timeout)
    LATE_STORE = "late_store"


@dataclass
class Fault:
    method: str
    path: str  # exact path or fnmatch pattern, e.g. "/2/tweets/*"
    kind: FaultKind
    count: int = 1
    status: int = 503
    delay_seconds: float = 0.0  # DELAY and LATE_STORE
    accept: bool = False  # STATUS and TIMEOUT: act (store the post) before failing

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method.upper()) and fnmatch.fnmatchcase(path, self.path)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "kind": self.kind.value,
            "count": self.count,
            "status": self.status,
            "delay_seconds": self.delay_seconds,
            "accept": self.accept,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Fault:
        kind = FaultKind(body["kind"])
        count = int(body.get("count", 1))
        if count < 1:
            raise ValueError("count must be at least 1")
        if float(body.get("delay_seconds", 0.0)) < 0:
            raise ValueError("delay_seconds must not be negative")
        return cls(
            method=str(body.get("method", "*")).upper(),
            path=str(body["path"]),
            kind=kind,
            count=count,
            status=int(body.get("status", 503)),
            delay_seconds=float(body.get("delay_seconds", 0.0)),
            accept=bool(body.get("accept", False)),
        )


class FaultBook:
    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def clear(self) -> None:
        self._faults.clear()

    def pending(self) -> list[Fault]:
        return list(self._faults)

    def take(self, method: str, path: str) -> Fault | None:
        """The first matching fault, consuming one of its uses."""
        for fault in self._faults:
            if fault.matches(method, path):
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
        return None
