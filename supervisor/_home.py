"""STEWARD_HOME: the one directory a daemon writes to, so daemons and tests can run side by side.

One daemon per home: a second daemon on the same home would journal the same fills twice and
fight over the same orders, so it is refused with the holder's pid.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Final, TextIO

from clients._token import DEFAULT_HOME as DEFAULT_HOME  # the client finds what we write
from clients._token import HOME_ENV as HOME_ENV
from clients._token import home_dir

LOCK_FILE: Final = "daemon.lock"


class HomeInUseError(RuntimeError):
    """Another live daemon holds this STEWARD_HOME."""


def steward_home() -> Path:
    """$STEWARD_HOME, else ~/.local/state/steward; created (mode 0700) if missing."""
    home = home_dir()
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    return home


class HomeLock:
    """An exclusive flock on STEWARD_HOME/daemon.lock, held for the daemon's life.

    flock dies with the process, so a SIGKILLed daemon never leaves a stale lock behind.
    """

    def __init__(self, home: Path) -> None:
        self.path = home / LOCK_FILE
        self._file: TextIO | None = None

    def acquire(self) -> None:
        """Take the lock or raise HomeInUseError naming the holder's pid."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise HomeInUseError(
                f"another steward daemon (pid {holder}) is using {self.path.parent}; "
                f"set {HOME_ENV} to run a second one"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
