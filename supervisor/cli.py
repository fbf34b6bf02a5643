"""The `steward` command.

Daemon verbs (`run`, and `stats` with the trading core) live here because they run the daemon
or read its files; control verbs that speak gRPC to a daemon arrive in `clients/` with the
control-plane issue and are added to this parser from there.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import os
import sqlite3
import sys
import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Final

import msgspec
import trio
from rich.console import Console

from actors.journal import JournalSchemaError
from clients.cli import CONTROL_VERBS, add_control_verbs, run_control_verb
from exchanges import VenueError

from ._auth import AuthConfigError
from ._config import ConfigError, config_schema, load_config
from ._daemon import run_daemon
from ._grpc import ControlServerError
from ._home import HOME_ENV, HomeInUseError, steward_home
from ._stats import read_stats, render_stats
from ._view import live_view, log_view

LOG_FORMAT: Final = "%(asctime)s %(levelname)-8s %(name)s: %(message)s"
QUIET_LIBRARY_LOGGERS: Final = ("httpx", "httpcore", "trio-websocket")
"""Warnings only, whatever --log-level says: httpx logs every request URL at INFO, and a signed
venue request's query holds its signature; the others log frames and headers at DEBUG."""
EXIT_USAGE: Final = 2
CONTROL_BIND_ENV: Final = "STEWARD_CONTROL_BIND"  # overrides the config's control.bind
DEFAULT_CONFIG: Final = Path(__file__).resolve().parent.parent / "examples" / "paper.toml"
EXIT_UNREADABLE: Final = 1
DEFAULT_JOURNAL: Final = "journal.sqlite"  # the config's default journal_path, under the home
NS_PER_HOUR: Final = 3_600_000_000_000


def package_version() -> str:
    try:
        return version("steward")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="steward",
        description="Supervised, actor-model crypto trading daemon and its control tools.",
        epilog=f"State (journal, paper venue accounts, tokens) lives under ${HOME_ENV} "
        "(default ~/.local/state/steward).",
    )
    parser.add_argument("--version", action="version", version=f"steward {package_version()}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    run = verbs.add_parser(
        "run",
        help="run the daemon in the foreground",
        description="Run the daemon's supervision tree in the foreground until SIGINT or "
        "SIGTERM, which stop it in order (exit 0). Exits 3 if the root supervisor gives up.",
    )
    run.add_argument("config", nargs="?", type=Path, default=None,
                     help=f"a TOML file (default: {DEFAULT_CONFIG})")
    run.add_argument("--log-level", default="INFO",
                     choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.add_argument("--plain", action="store_true",
                     help="log lines instead of the live view (the default when not a terminal)")

    verbs.add_parser(
        "schema",
        help="print the JSON schema of the config file",
        description="Print the JSON schema of the daemon's TOML config, with each strategy "
        "kind's parameter schema, for editors and validators.",
    )
    stats = verbs.add_parser(
        "stats",
        help="trading statistics from the journal",
        description="Per venue and account, and per strategy: maker and taker orders and "
        "volume, fees, funding, realized and net PnL, and net PnL in basis points of volume. "
        "Reads the journal read-only, so it is safe while the daemon runs. Realized PnL "
        "replays positions from the journal's first fill, whatever the window. Exits 2 if "
        "there is no journal.",
    )
    stats.add_argument("--hours", type=_positive_hours, default=None, metavar="H",
                       help="only the last H hours, by venue time (default: all time)")
    stats.add_argument("--venue", default=None, metavar="V", help="only this venue")
    stats.add_argument("--journal", type=Path, default=None, metavar="PATH",
                       help=f"the journal file (default: ${HOME_ENV}/{DEFAULT_JOURNAL})")
    stats.add_argument("--json", action="store_true",
                       help="one JSON object, decimals as strings, instead of tables")
    add_control_verbs(verbs)
    return parser


def _positive_hours(text: str) -> float:
    try:
        hours = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of hours: {text!r}") from None
    if not (math.isfinite(hours) and hours > 0):
        raise argparse.ArgumentTypeError(f"hours must be positive, got {text!r}")
    return hours


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verb == "run":
        return _run(args)
    if args.verb == "schema":
        print(json.dumps(config_schema(), indent=2))
        return 0
    if args.verb == "stats":
        return _stats(args)
    if args.verb in CONTROL_VERBS:
        return run_control_verb(args)
    raise AssertionError(f"unhandled verb {args.verb}")  # argparse rejects unknown verbs


def _run(args: argparse.Namespace) -> int:
    live = sys.stdout.isatty() and not args.plain
    path = args.config or DEFAULT_CONFIG
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"steward: bad config: {exc}", file=sys.stderr)
        return EXIT_USAGE
    bind = os.environ.get(CONTROL_BIND_ENV)
    if bind:  # several daemons on one host (and the test suite) each take their own port
        config = msgspec.structs.replace(
            config, control=msgspec.structs.replace(config.control, bind=bind))
    log_file = None
    if live:
        # The live view owns the terminal; the log goes to a file beside the state.
        home = steward_home()
        log_file = home / "daemon.log"
        logging.basicConfig(level=args.log_level, format=LOG_FORMAT, filename=log_file)
    else:
        logging.basicConfig(level=args.log_level, format=LOG_FORMAT, stream=sys.stderr)
    for name in QUIET_LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    home = steward_home()
    reporter = live_view if live else log_view
    try:
        return trio.run(functools.partial(run_daemon, home, config, reporter=reporter,
                                          config_source=path))
    except ConfigError as exc:  # found at start-up: a credential's variable unset, a symbol
        print(f"steward: bad config: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (HomeInUseError, ControlServerError, AuthConfigError) as exc:
        print(f"steward: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except VenueError as exc:  # a live venue unreachable while opening: nothing traded yet
        print(f"steward: cannot open venue: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE


def _stats(args: argparse.Namespace) -> int:
    path: Path = args.journal if args.journal is not None else steward_home() / DEFAULT_JOURNAL
    since_ns = None if args.hours is None else time.time_ns() - round(args.hours * NS_PER_HOUR)
    try:
        report = read_stats(path, since_ns=since_ns, venue=args.venue)
    except FileNotFoundError:
        print(f"steward: no journal at {path} (set {HOME_ENV} or pass --journal)",
              file=sys.stderr)
        return EXIT_USAGE
    except JournalSchemaError as exc:
        print(f"steward: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except sqlite3.Error as exc:
        print(f"steward: cannot read the journal at {path}: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    if args.json:
        sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
    else:
        Console().print(render_stats(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
