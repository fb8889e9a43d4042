"""`post-management token` mints only tokens the server accepts."""

from __future__ import annotations

import pytest

from post_management.entrypoints.cli import parser
from post_management.entrypoints.grpc.tokens import MAX_SUBJECT_LENGTH


def test_token_subject_up_to_the_limit_is_accepted() -> None:
    args = parser().parse_args(["token", "--subject", "s" * MAX_SUBJECT_LENGTH])
    assert args.subject == "s" * MAX_SUBJECT_LENGTH


@pytest.mark.parametrize("subject", ["", "s" * (MAX_SUBJECT_LENGTH + 1)])
def test_token_subject_outside_the_limit_is_refused(
    subject: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(["token", "--subject", subject])
    assert exited.value.code == 2
    assert f"must be 1-{MAX_SUBJECT_LENGTH} characters" in capsys.readouterr().err
