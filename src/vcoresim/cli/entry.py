"""The ``vcoresim`` executable: Ctrl-C and SIGTERM handled from the first instant.

Importing the commands takes a second; a signal in that time ends the run
with one line and exit 3 (interrupted, nothing was found yet) instead of a
``KeyboardInterrupt`` traceback.  Once a command runs, ``cli/common.py``'s
handler takes over (finish, keep what was found, exit 3 or 1); once it has
returned, signals are ignored while the interpreter exits.
"""

from __future__ import annotations

import os
import signal
from typing import Any


def _early(_signum: int, _frame: Any) -> None:
    os.write(2, b"vcoresim: interrupted before the command started\n")
    os._exit(3)


def run() -> None:
    signal.signal(signal.SIGINT, _early)
    signal.signal(signal.SIGTERM, _early)
    from vcoresim.cli.app import main

    try:
        main()
    finally:
        # The results are out and the exit code is set: a signal while Python
        # shuts down (it resets handlers to the default there) must not turn
        # exit 3 into "killed by SIGINT".
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
