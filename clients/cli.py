"""The `steward` control verbs: status, params, pause/resume-actor/restart, kill, resume.

`supervisor.cli` adds these to its parser (`add_control_verbs`) and hands them back here
(`run_control_verb`); this module imports only `clients` and `protos`, never the daemon.

Exit codes: 0 ok; 2 usage or a request the daemon refused as asked (invalid argument, not
found, failed precondition); 3 unauthenticated or permission denied; 4 unavailable (no daemon
answered in time). `kill --fleet` and `fleet status`: 0 only when every host confirmed
(HALTED; answered), 1 when some did not (each named), 2 for an unusable fleet file.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path
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
from ._fleet import (
    DEFAULT_DEADLINE_S,
    FleetError,
    KillOutcome,
    StatusOutcome,
    fleet_status,
    kill_fleet,
    load_fleet,
)
from ._tls import TLS_CA_ENV, TLS_CERT_ENV, TLS_KEY_ENV, TlsConfigError, TlsOptions
from ._token import ADDRESS_ENV, TOKEN_ENV, default_address

EXIT_OK: Final = 0
EXIT_USAGE: Final = 2
EXIT_DENIED: Final = 3
EXIT_UNAVAILABLE: Final = 4
EXIT_FLEET_INCOMPLETE: Final = 1  # some host did not confirm (kill --fleet, fleet status)

CONTROL_VERBS: Final = frozenset({"status", "params", "pause", "resume-actor", "restart", "kill",
                                  "resume", "fleet", "watch"})


def add_control_verbs(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the control verbs on `steward`'s subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--host", default=None, metavar="ADDR",
                        help=f"the daemon's control address (default: ${ADDRESS_ENV}, "
                        "else 127.0.0.1:50051)")
    common.add_argument("--json", action="store_true", help="JSON instead of tables")
    common.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                        help=f"deadline per call in seconds (default {DEFAULT_TIMEOUT_S:g})")
    for flag, env, what in (("--tls-ca", TLS_CA_ENV, "CA that signs the daemon's certificate"),
                            ("--tls-cert", TLS_CERT_ENV, "client certificate, for mTLS"),
                            ("--tls-key", TLS_KEY_ENV, "client certificate's key")):
        common.add_argument(flag, default=None, metavar="PEM",
                            help=f"TLS: the {what} (default: ${env}; none set: no TLS)")
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
    _add_fleet_verbs(verbs, kill)
    resume = verbs.add_parser("resume", parents=[common], help="back to ACTIVE trading",
                              description=f"End a halt and resume the strategies. {token_note}")
    resume.add_argument("--reason", required=True)
    watch = verbs.add_parser("watch", parents=[common], help="follow the daemon's events",
                             description="One line per event as it happens (actor started, "
                             "crashed, restarted; control actions; trading state; orders, "
                             f"fills, risk denials) until Ctrl-C. {token_note}")
    watch.add_argument("--kind", action="append", default=[], metavar="KIND",
                       help="only events of this kind (repeatable), e.g. actor_crashed, fill")


def run_control_verb(args: argparse.Namespace) -> int:
    if args.verb == "fleet" or getattr(args, "fleet", None) is not None:
        return _run_fleet_verb(args)
    address = args.host or default_address()
    try:
        tls = TlsOptions.from_env(ca_file=args.tls_ca, cert_file=args.tls_cert,
                                  key_file=args.tls_key)
        with ControlClient(address, tls=tls, timeout_s=args.timeout) as client:
            return _run(client, args)
    except (Unauthenticated, PermissionDenied) as exc:
        return _fail(exc, EXIT_DENIED)
    except Unavailable as exc:
        return _fail(exc, EXIT_UNAVAILABLE, f" (is a daemon running at {address}?)")
    except ControlClientError as exc:
        return _fail(exc, EXIT_USAGE)
    except (UsageError, TlsConfigError) as exc:
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
    elif verb == "watch":
        _watch(client, args)
    else:
        raise AssertionError(f"not a control verb: {verb}")
    return EXIT_OK


def _watch(client: ControlClient, args: argparse.Namespace) -> None:
    """One line per event (one JSON object per line with --json), flushed, until Ctrl-C or
    the daemon ends the stream."""
    try:
        for event in client.watch_events(args.kind):
            if args.json:
                line = json.dumps(event, sort_keys=True)
            else:
                when = time.strftime("%H:%M:%S", time.localtime(event["ts_ns"] / 1e9))
                missed = f" [{event['dropped']} events missed]" if event["dropped"] else ""
                line = f"{when} {event['kind']:<18} {event['summary']}{missed}"
            print(line, flush=True)
    except KeyboardInterrupt:
        pass


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


# ---- the fleet: `kill --fleet FILE`, `fleet status --fleet FILE` -----------------------------


def _add_fleet_verbs(verbs: argparse._SubParsersAction[argparse.ArgumentParser],
                     kill: argparse.ArgumentParser) -> None:
    fleet_note = ("FILE is a fleet.toml: [[hosts]] with name, address, token_env or token_file, "
                  "and TLS files (see examples/fleet/fleet.toml).")
    kill.add_argument("--fleet", type=Path, default=None, metavar="FILE",
                      help="every host of this fleet file at once, instead of --host; exits 0 "
                      "only when every host confirmed HALTED, else 1 naming those that did not")
    kill.add_argument("--deadline", type=_positive_seconds, default=DEFAULT_DEADLINE_S,
                      metavar="S", help="with --fleet: for the whole fleet, retries included "
                      f"(default {DEFAULT_DEADLINE_S:g})")
    fleet = verbs.add_parser("fleet", help="many daemons at once",
                             description=f"Ask every host of a fleet in parallel. {fleet_note}")
    fleet.add_argument("action", choices=["status"])
    fleet.add_argument("--fleet", type=Path, required=True, metavar="FILE")
    fleet.add_argument("--json", action="store_true", help="JSON instead of a table")
    fleet.add_argument("--deadline", type=_positive_seconds, default=DEFAULT_DEADLINE_S,
                       metavar="S", help=f"for the whole fleet (default {DEFAULT_DEADLINE_S:g})")


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"seconds must be positive, got {text!r}")
    return seconds


def _run_fleet_verb(args: argparse.Namespace) -> int:
    if args.verb == "kill":
        given = [flag for flag in ("--host", "--tls-ca", "--tls-cert", "--tls-key")
                 if getattr(args, flag[2:].replace("-", "_"), None) is not None]
        if given:
            print(f"steward: --fleet takes no {', '.join(given)}: each host's address and TLS "
                  "files are in the fleet file", file=sys.stderr)
            return EXIT_USAGE
    try:
        fleet = load_fleet(args.fleet)
    except FleetError as exc:
        print(f"steward: bad fleet file: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for warning in fleet.warnings:
        print(f"steward: warning: {warning}", file=sys.stderr)
    if args.verb == "kill":
        kills = kill_fleet(fleet, args.reason, flatten=args.flatten, deadline_s=args.deadline)
        failed = [(o.name, o.error) for o in kills if not o.halted]
        _emit(args, {"halted": not failed, "hosts": [asdict(o) for o in kills]},
              lambda: _render_fleet_kill(kills))
        what = "not confirmed HALTED"
    else:
        states = fleet_status(fleet, deadline_s=args.deadline)
        failed = [(o.name, o.error) for o in states if o.error]
        _emit(args, {"answered": not failed, "hosts": [asdict(o) for o in states]},
              lambda: _render_fleet_status(states))
        what = "no answer"
    if failed:
        print(f"steward: {what}: " + "; ".join(f"{name} ({error})" for name, error in failed),
              file=sys.stderr)
        return EXIT_FLEET_INCOMPLETE
    return EXIT_OK


def _render_fleet_kill(outcomes: list[KillOutcome]) -> None:
    table = Table("host", "address", "outcome", "orders cancelled", "ms", "error",
                  title="emergency stop")
    for o in outcomes:
        outcome = ("[bold red]HALTED[/bold red]" + (" (already)" if o.already_halted else "")
                   if o.halted else "[bold]NOT CONFIRMED[/bold]")
        errors = [f"{a['venue']}/{a['account']}: {a['error']}" for a in o.accounts if a["error"]]
        table.add_row(o.name, o.address, outcome, str(o.orders_cancelled) if o.halted else "-",
                      f"{o.elapsed_ms:.0f}", "; ".join([o.error, *errors]).strip("; "))
    Console().print(table)


def _render_fleet_status(outcomes: list[StatusOutcome]) -> None:
    table = Table("host", "address", "trading", "reason", "open orders", "error")
    for o in outcomes:
        table.add_row(o.name, o.address, o.state or "?", o.reason,
                      str(o.open_orders) if not o.error else "-", o.error)
    Console().print(table)
