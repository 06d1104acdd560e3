"""A SIGHUP that arrives while the exporter is still starting is kept, not fatal.

The default action of SIGHUP is to end the process, and importing the
exporter takes a good half second: `systemctl reload` right after start
would kill it. The package's `__init__` imports this module before anything
else of ours, so the handler is in place a moment after the interpreter
runs our first line (the interpreter's own start, some 20 ms, stays a
window unless SIGHUP is ignored from exec on, as the shipped unit's `nohup`
does; under systemd, `Type=notify` keeps reloads away until READY=1).
Only the C module `_signal` is imported: `signal` pulls in `enum`, and
`threading` more, each a few milliseconds of that window. `serve` installs
its real handler later and honours a remembered SIGHUP then.

Only in the main thread, and only over the default action: importing the
package from a program that handles SIGHUP itself changes nothing. The
`dicom-exporter` command (`exporter.cli`) also takes over an inherited
SIG_IGN (`take_over_ignored`) before it reads any file: the shipped unit
starts it under `nohup`, so that SIGHUP is ignored from exec on, the
interpreter's start included. Ignored until then loses nothing (no file has
been read yet); held from then on, a SIGHUP still reloads once serving, and
no process the command starts inherits an ignored SIGHUP (exec resets a
handler to the default, but keeps SIG_IGN).
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


def _hold_over(dispositions: tuple[object, ...]) -> None:
    try:
        if _signal.getsignal(_signal.SIGHUP) in dispositions:
            _signal.signal(_signal.SIGHUP, _hold)
    except ValueError:  # not the main thread: signals are not ours to set here
        pass


def take_over_ignored() -> None:
    """The command's own: hold SIGHUP over the SIG_IGN `nohup` left (or the default)."""
    _hold_over((_signal.SIG_DFL, _signal.SIG_IGN))


_hold_over((_signal.SIG_DFL,))
