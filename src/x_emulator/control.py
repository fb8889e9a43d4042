"""A small client for the emulator's control API, for tests and local tooling."""

from __future__ import annotations

from typing import Any

import requests


class Unset:
    """Marks an argument left out, where None is a meaningful value."""


UNSET = Unset()


class EmulatorControl:
    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._session = requests.Session()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._session.request(
            method, f"{self.base_url}/_emulator/{path}", timeout=self._timeout, **kwargs
        )
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self._call("POST", "reset")

    def set_limits(self, **limits: float) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PUT", "limits", json=limits)
        return result

    def behaviour(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "behaviour")
        return result

    def set_behaviour(
        self,
        *,
        timeline_lag_seconds: float | tuple[float, float] | None = None,
        duplicate_window_seconds: float | Unset | None = UNSET,
    ) -> dict[str, Any]:
        """Timeline lag (seconds, or a (min, max) range) and the duplicate-content
        window (seconds; None: refused for as long as the earlier post exists)."""
        body: dict[str, Any] = {}
        if timeline_lag_seconds is not None:
            lag = timeline_lag_seconds
            body["timeline_lag_seconds"] = list(lag) if isinstance(lag, tuple) else lag
        if not isinstance(duplicate_window_seconds, Unset):
            body["duplicate_window_seconds"] = duplicate_window_seconds
        result: dict[str, Any] = self._call("PUT", "behaviour", json=body)
        return result

    def register_user(
        self, access_token: str, user_id: str | None = None, username: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"access_token": access_token}
        if user_id is not None:
            body["user_id"] = user_id
        if username is not None:
            body["username"] = username
        result: dict[str, Any] = self._call("POST", "users", json=body)
        return result

    def suspend(self, user_id: str) -> None:
        self._call("POST", f"users/{user_id}/suspend")

    def unsuspend(self, user_id: str) -> None:
        self._call("POST", f"users/{user_id}/unsuspend")

    def revoke(self, access_token: str) -> None:
        self._call("POST", "tokens/revoke", json={"access_token": access_token})

    def inject_fault(
        self,
        method: str,
        path: str,
        kind: str,
        *,
        count: int = 1,
        status: int = 503,
        delay_seconds: float = 0.0,
        accept: bool = False,
    ) -> None:
        """kind: "status", "delay", "timeout", "accept_then_drop" or "late_store"."""
        body = {
            "method": method,
            "path": path,
            "kind": kind,
            "count": count,
            "status": status,
            "delay_seconds": delay_seconds,
            "accept": accept,
        }
        self._call("POST", "faults", json=body)

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def posts(
        self,
        text: str | None = None,
        author_id: str | None = None,
        include_deleted: bool = False,
    ) -> list[dict[str, Any]]:
        params = {"include_deleted": str(include_deleted).lower()}
        if text is not None:
            params["text"] = text
        if author_id is not None:
            params["author_id"] = author_id
        result: list[dict[str, Any]] = self._call("GET", "posts", params=params)
        return result

    def seed_post(self, author_id: str, text: str, age_seconds: float = 0.0) -> dict[str, Any]:
        body = {"author_id": author_id, "text": text, "age_seconds": age_seconds}
        result: dict[str, Any] = self._call("POST", "posts", json=body)
        return result

    def counters(self) -> dict[str, int]:
        result: dict[str, int] = self._call("GET", "counters")
        return result

    def requests(self) -> list[dict[str, str]]:
        """The newest X requests the emulator received: method, path, traceparent."""
        result: list[dict[str, str]] = self._call("GET", "requests")
        return result

    def now(self) -> float:
        """The emulator clock (unix seconds), which posts' created_at and visible_at use."""
        result: dict[str, float] = self._call("GET", "clock")
        return result["now"]

    def advance_clock(self, seconds: float) -> float:
        """Move the emulator clock forward; returns its new time (unix seconds)."""
        result: dict[str, float] = self._call("POST", "clock", json={"advance_seconds": seconds})
        return result["now"]

    def close(self) -> None:
        self._session.close()
