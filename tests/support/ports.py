"""Free loopback ports for the servers and processes tests start.

A port is free only until someone binds it, and the kernel may hand the same free port
to two probes in a row (a CI run once gave a service's metrics and Envoy one port).
So a batch is probed with every socket held open until all are chosen, and no port is
handed out twice in one test run.
"""

from __future__ import annotations

import contextlib
import socket
import threading

_handed_out: set[int] = set()
_lock = threading.Lock()


def free_ports(count: int) -> list[int]:
    """`count` distinct ports that were free on 127.0.0.1 a moment ago."""
    ports: list[int] = []
    with _lock, contextlib.ExitStack() as held:
        while len(ports) < count:
            probe = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
            # A port refused here stays bound until the batch is chosen, so it is not
            # offered again.
            if port not in _handed_out:
                _handed_out.add(port)
                ports.append(port)
    return ports


def free_port() -> int:
    """One port that was free on 127.0.0.1 a moment ago, never handed out before."""
    return free_ports(1)[0]
