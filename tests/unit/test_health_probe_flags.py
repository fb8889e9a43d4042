"""`post-management health-probe` reads grpc_health_probe's flags the way Go does."""

from __future__ import annotations

import io

import pytest

from post_management.entrypoints import health_probe
from post_management.entrypoints.health_probe import UsageError, parse, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("300ms", 0.3), ("1m30s", 90.0), ("1.5s", 1.5), ("2h", 7200.0), ("0", 0.0)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "s", "1x", "1s2", "abc"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UsageError):
        parse_duration(text)


def test_every_spelling_of_a_flag_is_read() -> None:
    flags = parse(
        [
            *("-addr=localhost:1", "--service", "xmp.posts.v1.PostService"),
            *("-connect-timeout", "250ms", "--rpc-timeout=2s", "-v", "-gzip=true"),
            *("-rpc-header", "x-request-id: probe", "-user-agent=kubelet"),
        ]
    )
    assert flags.addr == "localhost:1"
    assert flags.service == "xmp.posts.v1.PostService"
    assert (flags.connect_timeout, flags.rpc_timeout) == (0.25, 2.0)
    assert flags.verbose and flags.gzip
    assert flags.rpc_headers == [("x-request-id", "probe")]
    assert flags.user_agent == "kubelet"


def test_defaults_are_grpc_health_probes() -> None:
    flags = parse(["-addr", "h:1"])
    assert (flags.service, flags.connect_timeout, flags.rpc_timeout) == ("", 1.0, 1.0)
    assert flags.user_agent == "grpc_health_probe"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "-addr not specified"),
        (["-addr=h:1", "-connect-timeout=0s"], "-connect-timeout must be greater than zero"),
        (["-addr=h:1", "-rpc-timeout=-1s"], "-rpc-timeout must be greater than zero"),
        (["-addr=h:1", "-tls-no-verify"], "specified -tls-no-verify without specifying -tls"),
        (["-addr=h:1", "-tls-ca-cert=ca.pem"], "specified -tls-ca-cert without specifying -tls"),
        (["-addr=h:1", "-tls", "-tls-client-cert=c.pem"], "specify both -tls-client-cert"),
        (["-addr=h:1", "-tls", "-tls-no-verify", "-tls-ca-cert=x"], "cannot specify -tls-ca-cert"),
        (["-addr=h:1", "-alts", "-spiffe"], "mutually incompatible"),
        (["-addr=h:1", "-tls"], "post-management serves plaintext gRPC only"),
        (["-addr=h:1", "-spiffe"], "post-management serves plaintext gRPC only"),
        (["-addr=h:1", "-rpc-header=novalue"], '"key: value" form'),
        (["-addr=h:1", "-bogus"], "flag provided but not defined: -bogus"),
        (["-addr"], "flag needs an argument: -addr"),
        (["-addr=h:1", "-v=maybe"], 'invalid boolean value "maybe" for -v'),
        (["-addr=h:1", "extra"], "unexpected argument 'extra'"),
    ],
)
def test_bad_arguments_exit_1_with_the_reason(args: list[str], message: str) -> None:
    err = io.StringIO()
    assert health_probe.main(args, err) == health_probe.INVALID_ARGUMENTS == 1
    assert message in err.getvalue()


def test_usage_only_for_flags_it_cannot_read() -> None:
    unreadable, refused = io.StringIO(), io.StringIO()
    health_probe.main(["-nope"], unreadable)
    health_probe.main(["-addr=h:1", "-connect-timeout=0s"], refused)
    assert "usage: post-management health-probe" in unreadable.getvalue()
    assert "usage:" not in refused.getvalue()


def test_the_console_script_and_the_cli_both_dispatch_the_probe() -> None:
    from post_management import launcher
    from post_management.entrypoints import cli

    for main in (launcher.main, cli.main):
        with pytest.raises(SystemExit) as exited:
            main(["health-probe"])
        assert exited.value.code == 1
