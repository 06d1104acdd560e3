"""A SIGHUP that arrives while the exporter is still starting is kept, not fatal.

The default action of SIGHUP is to end the process, and importing the
exporter takes a good half second: `systemctl reload` right after start
would kill it. The package's `__init__` imports this module before anything
else of ours, so the handler is in place a moment after the interpreter
runs our first line (the interpreter's own start, some 20 ms, stays a
window; under systemd, `Type=notify` keeps reloads away until READY=1).
Only the C module `_signal` is imported: `signal` pulls in `enum`, and
`threading` more, each a few milliseconds of that window. `serve` installs
its real handler later and honours a remembered SIGHUP then.

Only in the main thread, and only over the default action: importing the
package from a program that handles SIGHUP itself changes nothing.
"""

from __future__ import annotations

import _signal

_held: list[bool] = []


def early() -> bool:
    """Whether a SIGHUP arrived while starting (and was held, not fatal)."""
    return bool(_held)


def _hold(signum: int, frame: object) -> None:
    if not _held:  # one is enough: a reload reads the files as they are then
        _held.append(True)


try:
    if _signal.getsignal(_signal.SIGHUP) == _signal.SIG_DFL:
        _signal.signal(_signal.SIGHUP, _hold)
except ValueError:  # not the main thread: signals are not ours to set here
    pass
