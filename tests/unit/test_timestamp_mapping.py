"""The mapping's timestamps equal protobuf's own Timestamp.FromDatetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from post_management.entrypoints.grpc.mapping import timestamp


def _reference(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.sampled_from(
        [None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
    ),
)
def test_equal_to_from_datetime(naive: datetime, zone: timezone | None) -> None:
    value = naive if zone is None else naive.replace(tzinfo=zone)
    assert timestamp(value) == _reference(value)


def test_edges() -> None:
    assert timestamp(None) is None
    for value in (
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2031, 3, 10, 12, 0, 0, 123456, tzinfo=UTC),
    ):
        assert timestamp(value) == _reference(value)
