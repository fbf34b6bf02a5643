"""What `steward run` shows: a live table on a terminal, a plain log line otherwise.

Refreshed about once a second from the same status snapshot the control plane serves.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Final

import trio
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ._assembly import Assembly
from ._snapshot import ActorState
from ._status import DaemonStatus, collect_status
from ._supervisor import Supervisor

logger = logging.getLogger("steward.status")

REFRESH_S: Final = 1.0
LOG_EVERY_S: Final = 10.0
_STATE_STYLE: Final = {
    ActorState.RUNNING: "green", ActorState.STARTING: "yellow",
    ActorState.RESTARTING: "yellow", ActorState.STOPPED: "dim", ActorState.FAILED: "bold red",
}


async def live_view(root: Supervisor, assembly: Assembly) -> None:
    console = Console()
    with Live(console=console, auto_refresh=False, transient=False) as live:
        while True:
            status = await collect_status(root, assembly)
            live.update(render(status), refresh=True)
            await trio.sleep(REFRESH_S)


async def log_view(root: Supervisor, assembly: Assembly) -> None:
    while True:
        await trio.sleep(LOG_EVERY_S)
        logger.info("%s", summary(await collect_status(root, assembly)))


def summary(status: DaemonStatus) -> str:
    running = sum(1 for a in status.actors if a.state is ActorState.RUNNING)
    trading = status.trading.state.value if status.trading else "unknown"
    realized = sum((p.realized_pnl - p.fees + p.funding for p in status.positions), Decimal(0))
    unrealized = sum((p.unrealized_pnl for p in status.positions), Decimal(0))
    disagree = [f"{c.venue}/{c.account}/{c.symbol}" for c in status.position_checks
                if not c.agrees]
    return (
        f"trading={trading} actors={running}/{len(status.actors)} running "
        f"orders_open={len(status.open_orders)} realized_net={realized:.2f} "
        f"unrealized={unrealized:.2f} positions_disagree={disagree or 'none'}"
    )


def render(status: DaemonStatus) -> Group:
    trading = status.trading
    header = Text.assemble(
        (f"steward {status.name}", "bold"), "  trading ",
        (trading.state.value.upper() if trading else "?",
         "bold green" if trading and trading.state.value == "active" else "bold red"),
        f"  {trading.reason}" if trading and trading.reason else "",
        f"  up {status.uptime_s:.0f} s",
    )
    return Group(header, _actors(status), _venues(status), _positions(status),
                 _orders(status))


def _actors(status: DaemonStatus) -> Table:
    table = Table(title="actors", title_justify="left", expand=True)
    for column in ("path", "state", "restarts", "mailbox", "uptime s", "last error"):
        table.add_column(column)
    for actor in status.actors:
        error = f"{actor.last_error.type}: {actor.last_error.message}" if actor.last_error else ""
        table.add_row(actor.path, Text(actor.state.value, _STATE_STYLE[actor.state]),
                      str(actor.restart_count), str(actor.mailbox_depth),
                      f"{actor.uptime_s:.0f}", error[:60])
    return table


def _venues(status: DaemonStatus) -> Table:
    table = Table(title="venues", title_justify="left", expand=True)
    for column in ("venue", "connected", "data age s", "reconnects", "stale"):
        table.add_column(column)
    for feed in status.feeds:
        age = "-" if feed.data_age_s is None else f"{feed.data_age_s:.2f}"
        table.add_row(feed.venue, "yes" if feed.connected else Text("no", "red"), age,
                      str(feed.reconnects), ", ".join(feed.stale_symbols))
    return table


def _positions(status: DaemonStatus) -> Table:
    table = Table(title="positions (tracked / venue)", title_justify="left", expand=True)
    for column in ("venue", "account", "symbol", "strategy", "qty", "entry", "uPnL", "rPnL",
                   "fees", "maker vol", "taker vol"):
        table.add_column(column, justify="right" if column[0].islower() and column not in (
            "venue", "account", "symbol", "strategy") else "left")
    for p in status.positions:
        table.add_row(p.venue, p.account, p.symbol, p.strategy or "(funding)", f"{p.qty}",
                      f"{p.entry_price:.2f}", f"{p.unrealized_pnl:.2f}",
                      f"{p.realized_pnl:.2f}", f"{p.fees:.2f}", f"{p.maker_volume:.0f}",
                      f"{p.taker_volume:.0f}")
    for check in status.position_checks:
        venue_qty = "?" if check.venue_qty is None else str(check.venue_qty)
        mark = Text("agree", "green") if check.agrees else Text("DISAGREE", "bold red")
        table.add_row(check.venue, check.account, check.symbol, "venue check",
                      f"{check.tracked_qty} / {venue_qty}", "", "", "", "", "", mark)
    return table


def _orders(status: DaemonStatus) -> Table:
    table = Table(title=f"open orders ({len(status.open_orders)})", title_justify="left",
                  expand=True)
    for column in ("venue", "account", "symbol", "side", "price", "qty", "filled", "client id"):
        table.add_column(column)
    for order in sorted(status.open_orders, key=lambda o: (o.venue, o.symbol, o.side.value,
                                                           o.price or 0))[:20]:
        table.add_row(order.venue, order.account, order.symbol, order.side.value,
                      str(order.price), str(order.qty), str(order.filled_qty), order.client_id)
    return table
