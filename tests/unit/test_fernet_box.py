"""The credentials box: rotation, refusals, and no plaintext kept."""

from __future__ import annotations

from typing import Any

import pytest

from post_management.adapters.crypto import FernetBox, InvalidKeys


class Counting:
    """A MultiFernet stand-in that counts decryptions."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.calls = inner, 0

    def decrypt(self, token: bytes) -> bytes:
        self.calls += 1
        return bytes(self.inner.decrypt(token))

    def encrypt(self, plaintext: bytes) -> bytes:
        return bytes(self.inner.encrypt(plaintext))


def test_no_plaintext_is_kept_each_token_is_decrypted_when_read() -> None:
    """Stored X credentials in the clear are not kept by the box: the same token read
    twice is decrypted twice, and nothing the box holds is the plaintext."""
    box = FernetBox([FernetBox.generate_key()])
    token = box.encrypt(b"secret")
    counting = Counting(box._fernet)
    box._fernet = counting  # type: ignore[assignment]
    assert box.decrypt(token) == b"secret"
    assert box.decrypt(memoryview(token)) == b"secret"  # type: ignore[arg-type]
    assert counting.calls == 2
    held = [value for value in vars(box).values() if not isinstance(value, Counting)]
    assert all(b"secret" not in repr(value).encode() for value in held)
    assert all(getattr(value, "cache_info", None) is None for value in held)


def test_refusals_are_not_kept_and_each_box_decides_for_itself() -> None:
    old, new = FernetBox.generate_key(), FernetBox.generate_key()
    both = FernetBox([new, old])
    token = FernetBox([old]).encrypt(b"secret")
    assert both.decrypt(token) == b"secret"
    only_new = FernetBox([new])
    for _ in range(2):
        with pytest.raises(InvalidKeys):
            only_new.decrypt(token)
    with pytest.raises(InvalidKeys):
        both.decrypt(b"not a token")
    rotated = both.rotate(token)
    assert only_new.decrypt(rotated) == b"secret"
