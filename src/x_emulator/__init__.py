"""A local X API v2 emulator: a real HTTP server speaking X's wire format.

See server.EmulatorServer / EmulatorThread to run it, and control.EmulatorControl
for the test-facing control API under /_emulator/.
"""

from x_emulator.control import EmulatorControl
from x_emulator.server import EmulatorServer, EmulatorThread

__all__ = ["EmulatorControl", "EmulatorServer", "EmulatorThread"]
