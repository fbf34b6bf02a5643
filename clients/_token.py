"""Which token and address a client uses when not told: the same rules as the daemon's.

Kept apart from `supervisor` on purpose: a client never imports the daemon.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

TOKEN_ENV: Final = "STEWARD_TOKEN"
ADDRESS_ENV: Final = "STEWARD_ADDRESS"
HOME_ENV: Final = "STEWARD_HOME"
DEFAULT_HOME: Final = Path("~/.local/state/steward")
DEFAULT_ADDRESS: Final = "127.0.0.1:50051"
TOKEN_FILE: Final = "control.token"  # what the daemon writes when no tokens are configured


def default_address() -> str:
    return os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS


def home_dir() -> Path:
    """$STEWARD_HOME, else ~/.local/state/steward (not created: the daemon creates it)."""
    raw = os.environ.get(HOME_ENV)
    return Path(raw).expanduser() if raw else DEFAULT_HOME.expanduser()


def default_token() -> str | None:
    """$STEWARD_TOKEN, else the local daemon's $STEWARD_HOME/control.token, else None."""
    token = os.environ.get(TOKEN_ENV)
    if token:
        return token
    try:
        return (home_dir() / TOKEN_FILE).read_text().strip() or None
    except OSError:
        return None
