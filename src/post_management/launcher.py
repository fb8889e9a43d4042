"""The `post-management` command. The health probe is dispatched before the service's
modules load, so an exec probe starts in a fraction of a second."""

from __future__ import annotations

import sys

PROBE_COMMAND = "health-probe"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == [PROBE_COMMAND]:
        from post_management.entrypoints import health_probe

        sys.exit(health_probe.main(args[1:]))
    from post_management.entrypoints import cli

    cli.main(args)
