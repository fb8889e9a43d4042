"""Publishing settings that only make sense together stop start-up, naming them."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from post_management.bootstrap.settings import ConfigError, load_settings
from post_management.services.publishing.engine import MAX_SEND_DELAY


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "PUBLISH_LEASE_SECONDS",
        "PUBLISH_SETTLE_SECONDS",
        "X_TIMEOUT_SECONDS",
        "RECONCILE_GIVE_UP_SECONDS",
        "X_TIMELINE_LAG_SECONDS",
    ):
        monkeypatch.delenv(name, raising=False)


def test_a_lease_shorter_than_an_x_call_stops_start_up() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(publish_lease_seconds=20, x_timeout_seconds=20)
    message = str(error.value)
    assert "PUBLISH_LEASE_SECONDS" in message and "X_TIMEOUT_SECONDS" in message
    # The connect timeout (5 s) counts too.
    with pytest.raises(ConfigError):
        load_settings(publish_lease_seconds=24, x_timeout_seconds=20)
    assert load_settings(publish_lease_seconds=26, x_timeout_seconds=20)


def test_a_short_read_timeout_shortens_the_connect_timeout() -> None:
    settings = load_settings(publish_lease_seconds=5, x_timeout_seconds=1)
    assert settings.x.x_connect_timeout_seconds == 1
    assert load_settings().x.x_connect_timeout_seconds == 5


def test_give_up_must_exceed_lease_and_settle() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(
            publish_lease_seconds=90, publish_settle_seconds=30, reconcile_give_up_seconds=100
        )
    assert "RECONCILE_GIVE_UP_SECONDS" in str(error.value)


def test_the_engine_gets_the_give_up_bound() -> None:
    settings = load_settings(reconcile_give_up_seconds=600)
    assert settings.publishing.engine(25.0).timing.give_up == timedelta(seconds=600)
    assert load_settings().publishing.engine(25.0).timing.give_up == timedelta(hours=1)


def test_a_lag_bound_shorter_than_an_x_call_stops_start_up() -> None:
    # X may act on a request until the caller gives up: absence proves nothing before.
    with pytest.raises(ConfigError) as error:
        load_settings(x_timeline_lag_seconds=20, x_timeout_seconds=20)
    assert "X_TIMELINE_LAG_SECONDS" in str(error.value)
    assert load_settings(x_timeline_lag_seconds=25, x_timeout_seconds=20)


def test_give_up_must_exceed_lag_bound_and_settle() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(
            x_timeline_lag_seconds=600, publish_settle_seconds=30, reconcile_give_up_seconds=620
        )
    assert "X_TIMELINE_LAG_SECONDS" in str(error.value)


def test_the_engine_gets_the_lag_bound() -> None:
    assert load_settings().publishing.engine(25.0).timing.lag_bound == timedelta(seconds=120)
    settings = load_settings(x_timeline_lag_seconds=300)
    assert settings.publishing.engine(25.0).timing.lag_bound == timedelta(seconds=300)


def test_a_call_leaves_only_while_the_lease_outlasts_one_x_call() -> None:
    settings = load_settings(publish_lease_seconds=18, x_timeout_seconds=10)
    engine = settings.publishing.engine(settings.x.x_call_seconds)
    # 18 s of lease, less 10 s of read and 5 s of connect timeout.
    assert engine.send_window == timedelta(seconds=3)
    # With room to spare, five seconds at most (the reconciler's proof allows that).
    defaults = load_settings()
    assert defaults.publishing.engine(defaults.x.x_call_seconds).send_window == MAX_SEND_DELAY
    # Built directly, a lease no longer than one call is refused too.
    with pytest.raises(ValueError, match="must outlast one X call"):
        replace(engine, x_call=timedelta(seconds=40))
