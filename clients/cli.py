"""The `steward` control verbs: status, params, pause/resume-actor/restart, kill, resume.

`supervisor.cli` adds these to its parser (`add_control_verbs`) and hands them back here
(`run_control_verb`); this module imports only `clients` and `protos`, never the daemon.

Exit codes: 0 ok; 2 usage or a request the daemon refused as asked (invalid argument, not
found, failed precondition); 3 unauthenticated or permission denied; 4 unavailable (no daemon
answered in time).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Final

from rich.console import Console
from rich.table import Table

from ._client import DEFAULT_TIMEOUT_S, ControlClient
from ._exceptions import (
    ControlClientError,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from ._token import ADDRESS_ENV, TOKEN_ENV, default_address

EXIT_OK: Final = 0
EXIT_USAGE: Final = 2
EXIT_DENIED: Final = 3
EXIT_UNAVAILABLE: Final = 4

CONTROL_VERBS: Final = frozenset({"status", "params", "pause", "resume-actor", "restart", "kill",
                                  "resume"})


def add_control_verbs(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the control verbs on `steward`'s subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--host", default=None, metavar="ADDR",
                        help=f"the daemon's control address (default: ${ADDRESS_ENV}, "
                        "else 127.0.0.1:50051)")
    common.add_argument("--json", action="store_true", help="JSON instead of tables")
    common.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                        help=f"deadline per call in seconds (default {DEFAULT_TIMEOUT_S:g})")
    token_note = (f"The token is ${TOKEN_ENV}, else the local daemon's control.token under "
                  "$STEWARD_HOME.")

    verbs.add_parser("status", parents=[common], help="a running daemon's status",
                     description="Trading state, actors, feeds, positions (tracked against "
                     f"the venue), open orders and PnL. {token_note}")
    params = verbs.add_parser("params", parents=[common], help="a strategy's parameters",
                              description="Show a strategy's parameters, or change some: the "
                              "new set is validated whole and applied atomically or not at all. "
                              + token_note)
    params.add_argument("action", choices=["get", "set"])
    params.add_argument("actor", help="the strategy's name")
    params.add_argument("assignments", nargs="*", metavar="key=value",
                        help="with set: the parameters to change")
    params.add_argument("--dry-run", action="store_true", help="with set: validate only")
    for verb, what in (("pause", "pause a strategy (it cancels its orders and stops quoting)"),
                       ("resume-actor", "resume a paused strategy"),
                       ("restart", "restart any actor")):
        parser = verbs.add_parser(verb, parents=[common], help=what,
                                  description=f"{what[0].upper()}{what[1:]}. {token_note}")
        parser.add_argument("actor")
    kill = verbs.add_parser(
        "kill", parents=[common], help="emergency stop: halt trading, cancel everything",
        description="HALTED at once (risk denies every new order), strategies stopped, "
        "cancel-all on every venue account, optionally flatten with reduce-only market "
        f"orders. Persisted: a restarted daemon stays halted until `steward resume`. {token_note}")
    kill.add_argument("--reason", required=True)
    kill.add_argument("--flatten", action="store_true", help="also close every position")
    resume = verbs.add_parser("resume", parents=[common], help="back to ACTIVE trading",
                              description=f"End a halt and resume the strategies. {token_note}")
    resume.add_argument("--reason", required=True)


def run_control_verb(args: argparse.Namespace) -> int:
    address = args.host or default_address()
    try:
        with ControlClient(address, timeout_s=args.timeout) as client:
            return _run(client, args)
    except (Unauthenticated, PermissionDenied) as exc:
        return _fail(exc, EXIT_DENIED)
    except Unavailable as exc:
        return _fail(exc, EXIT_UNAVAILABLE, f" (is a daemon running at {address}?)")
    except ControlClientError as exc:
        return _fail(exc, EXIT_USAGE)
    except UsageError as exc:
        print(f"steward: {exc}", file=sys.stderr)
        return EXIT_USAGE


class UsageError(Exception):
    pass


def _fail(exc: ControlClientError, code: int, hint: str = "") -> int:
    print(f"steward: {exc.code.name.lower()}: {exc.details}{hint}", file=sys.stderr)
    return code


def _run(client: ControlClient, args: argparse.Namespace) -> int:
    verb = args.verb
    if verb == "status":
        status = client.status()
        _emit(args, status, lambda: _render_status(status))
    elif verb == "params":
        if args.action == "get":
            if args.assignments or args.dry_run:
                raise UsageError("params get takes no key=value or --dry-run")
            reply = client.get_params(args.actor)
        else:
            if not args.assignments:
                raise UsageError("params set needs at least one key=value")
            current = client.get_params(args.actor)["params"]
            changed = _assign(current, args.assignments)
            reply = client.update_params(args.actor, {**current, **changed},
                                         dry_run=args.dry_run)
        _emit(args, reply, lambda: _render_params(reply))
    elif verb in ("pause", "resume-actor", "restart"):
        method = {"pause": client.pause_actor, "resume-actor": client.resume_actor,
                  "restart": client.restart_actor}[verb]
        reply = method(args.actor)
        _emit(args, reply, lambda: print(f"{reply['name']}: {reply['outcome']}"))
    elif verb == "kill":
        reply = client.emergency_stop(args.reason, flatten=args.flatten)
        _emit(args, reply, lambda: _render_stop(reply))
    elif verb == "resume":
        reply = client.resume(args.reason)
        _emit(args, reply, lambda: print(f"trading {reply['state']}: {reply['reason']}"))
    else:
        raise AssertionError(f"not a control verb: {verb}")
    return EXIT_OK


def _emit(args: argparse.Namespace, data: dict[str, Any], human: Any) -> None:
    if args.json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        human()


def _assign(current: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """key=value pairs, each value typed like the parameter it replaces (decimals stay
    strings: a Struct would turn them into doubles)."""
    changed: dict[str, Any] = {}
    for text in assignments:
        key, sep, raw = text.partition("=")
        if not sep or not key:
            raise UsageError(f"not key=value: {text!r}")
        changed[key] = _typed(raw, current.get(key))
    return changed


def _typed(raw: str, like: Any) -> Any:
    if isinstance(like, str):
        return raw
    try:
        return json.loads(raw)  # numbers, booleans, lists
    except ValueError:
        return raw


# ---- human output ---------------------------------------------------------------------------


def _render_status(status: dict[str, Any]) -> None:
    console = Console()
    trading = status["trading"]
    console.print(f"[bold]{status['name']}[/bold]  trading [bold]{trading['state']}[/bold]"
                  + (f" ({trading['reason']}, by {trading['actor']})" if trading["reason"]
                     else "") + f"  up {float(status['uptime_s']):.0f} s")
    actors = Table("actor", "state", "restarts", "mailbox", "last error", title="actors")
    for actor in status["actors"]:
        error = actor.get("last_error") or {}
        actors.add_row(actor["path"], actor["state"], str(actor["restart_count"]),
                       str(actor["mailbox_depth"]),
                       f"{error['type']}: {error['message']}" if error else "")
    console.print(actors)
    feeds = Table("venue", "connected", "reconnects", "data age s", "stale", title="feeds")
    for feed in status["feeds"]:
        age = feed.get("data_age_s")
        feeds.add_row(feed["venue"], "yes" if feed["connected"] else "NO",
                      str(feed["reconnects"]), "-" if age is None else f"{age:.2f}",
                      ", ".join(feed["stale_symbols"]))
    console.print(feeds)
    positions = Table("venue", "account", "symbol", "strategy", "qty", "entry", "uPnL",
                      "rPnL", title="positions")
    for p in status["positions"]:
        positions.add_row(p["venue"], p["account"], p["symbol"], p["strategy"], p["qty"],
                          p["entry_price"], p["unrealized_pnl"], p["realized_pnl"])
    console.print(positions)
    checks = Table("venue", "account", "symbol", "tracked", "venue qty", "agrees",
                   title="positions at the venues")
    for c in status["position_checks"]:
        checks.add_row(c["venue"], c["account"], c["symbol"], c["tracked_qty"],
                       c["venue_qty"] or "?", "yes" if c["agrees"] else "[red]NO[/red]")
    console.print(checks)
    orders = Table("venue", "account", "symbol", "side", "qty", "price", "filled",
                   title=f"open orders ({len(status['open_orders'])})")
    for o in status["open_orders"]:
        orders.add_row(o["venue"], o["account"], o["symbol"], o["side"], o["qty"],
                       o["price"] or "market", o["filled_qty"])
    console.print(orders)
    pnl = status["pnl"]
    console.print(f"PnL: net {pnl['net']}  realized {pnl['realized']}  unrealized "
                  f"{pnl['unrealized']}  fees {pnl['fees']}  funding {pnl['funding']}")


def _render_params(reply: dict[str, Any]) -> None:
    table = Table("parameter", "value",
                  title=f"{reply['actor']}" + (" (dry run: not applied)" if reply["dry_run"]
                                               else ""))
    for key, value in sorted(reply["params"].items()):
        table.add_row(key, json.dumps(value) if not isinstance(value, str) else value)
    Console().print(table)


def _render_stop(reply: dict[str, Any]) -> None:
    console = Console()
    console.print("[bold red]HALTED[/bold red]" + (" (was already halted; cancelled again)"
                                                  if reply["already_halted"] else "")
                  + f" in {reply['elapsed_ms']:.1f} ms")
    table = Table("venue", "account", "orders cancelled", "flattened", "error")
    for a in reply["accounts"]:
        table.add_row(a["venue"], a["account"], str(a["orders_cancelled"]),
                      ", ".join(a["positions_flattened"]), a["error"])
    console.print(table)
