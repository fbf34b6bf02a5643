"""`python -m bench [all|GROUP]`: run benchmark groups, print one JSON object."""

from __future__ import annotations

import json
import logging
import platform
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Final

import trio

from .control import run_control
from .decode import run_decode
from .hop import run_hop
from .journal import run_journal
from .kill import run_kill
from .paper_match import run_paper_match
from .restart import run_restart
from .sign import run_sign
from .strategy_decision import run_strategy_decision
from .tick_to_order import run_tick_to_order

GROUPS: Final[dict[str, Callable[[], Awaitable[dict[str, Any]]]]] = {
    "control": run_control,
    "decode": run_decode,
    "hop": run_hop,
    "journal": run_journal,
    "kill": run_kill,
    "paper_match": run_paper_match,
    "restart": run_restart,
    "sign": run_sign,
    "strategy_decision": run_strategy_decision,
    "tick_to_order": run_tick_to_order,
}


def main(argv: list[str]) -> int:
    wanted = argv[0] if argv else "all"
    if wanted != "all" and wanted not in GROUPS:
        print(f"unknown bench group {wanted!r}; choose all or {', '.join(GROUPS)}",
              file=sys.stderr)
        return 2
    logging.disable(logging.CRITICAL)  # the restart bench crashes on purpose, thousands of times
    names = list(GROUPS) if wanted == "all" else [wanted]
    report: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine()}
    for name in names:
        report[name] = trio.run(GROUPS[name])
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
