"""A SIGHUP that arrives while the exporter is still starting is kept, not fatal.

The default action of SIGHUP is to end the process, and importing the
exporter takes a good half second: `systemctl reload` right after start
would kill it. The CLI imports this module before anything heavy; `serve`
installs its real handler later and honours a remembered SIGHUP then.
"""

from __future__ import annotations

import signal
import threading

early = threading.Event()

if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGHUP, lambda *_: early.set())
