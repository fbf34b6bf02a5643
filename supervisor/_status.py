"""The daemon's status: one snapshot the terminal view, `steward status` and GetStatus share.

Per venue, account and symbol it holds the position we track (from journaled fills) beside the
position the venue reports, and whether they agree: a disagreement is the first thing an
operator must see.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TypeVar

import msgspec
import trio

from actors import ActorError
from actors.messages import (
    POSITIONS,
    RISK,
    FeedStatus,
    GetFeedStatus,
    GetOrders,
    GetPositions,
    GetTradingState,
    PositionView,
    TradingStateChanged,
    gateway_name,
)
from exchanges import AccountClient, VenueError, VenueOrder

from ._assembly import Assembly
from ._snapshot import ActorSnapshot
from ._supervisor import Supervisor

STATUS_ASK_S = 1.0  # status must come back even when an actor is busy

T = TypeVar("T")


class PositionCheck(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    account: str
    symbol: str
    tracked_qty: Decimal
    venue_qty: Decimal | None
    """None when the venue could not be asked."""

    @property
    def agrees(self) -> bool:
        return self.venue_qty is not None and self.venue_qty == self.tracked_qty


class DaemonStatus(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    ts_ns: int
    uptime_s: float
    trading: TradingStateChanged | None
    actors: list[ActorSnapshot]
    feeds: list[FeedStatus]
    positions: list[PositionView]
    position_checks: list[PositionCheck]
    open_orders: list[VenueOrder]


async def collect_status(root: Supervisor, assembly: Assembly) -> DaemonStatus:
    trading = await _ask(root, RISK, GetTradingState(), TradingStateChanged)
    positions = await _ask_list(root, POSITIONS, GetPositions(), PositionView)
    feeds = []
    for venue_name in assembly.venues:
        feed = await _ask(root, f"feed.{venue_name}", GetFeedStatus(), FeedStatus)
        if feed is not None:
            feeds.append(feed)
    open_orders: list[VenueOrder] = []
    checks: list[PositionCheck] = []
    for venue_config in assembly.config.venues:
        venue = assembly.venues[venue_config.name]
        for account in venue_config.accounts:
            name = gateway_name(venue.name, account)
            open_orders.extend(await _ask_list(root, name, GetOrders(), VenueOrder))
            spot = {i.symbol for (v, _), i in assembly.instruments.items()
                    if v == venue.name and i.is_spot}
            perp_positions = [p for p in positions if p.symbol not in spot]
            checks.extend(await _position_checks(assembly.account_client(venue.name, account),
                                                 perp_positions))
    snapshot = root.snapshot()
    return DaemonStatus(
        name=assembly.config.name, ts_ns=time.time_ns(), uptime_s=snapshot[0].uptime_s,
        trading=trading, actors=snapshot, feeds=feeds, positions=positions,
        position_checks=checks, open_orders=open_orders,
    )


async def _position_checks(
    client: AccountClient, positions: list[PositionView]
) -> list[PositionCheck]:
    tracked: dict[str, Decimal] = {}
    for view in positions:
        if (view.venue, view.account) == (client.venue, client.account):
            tracked[view.symbol] = tracked.get(view.symbol, Decimal(0)) + view.qty
    reported: dict[str, Decimal] | None
    try:
        with trio.fail_after(STATUS_ASK_S):
            reported = {p.symbol: p.qty for p in await client.positions()}
    except (VenueError, trio.TooSlowError):
        reported = None
    checks = []
    for symbol in sorted(set(tracked) | set(reported or {})):
        ours = tracked.get(symbol, Decimal(0))
        theirs = None if reported is None else reported.get(symbol, Decimal(0))
        if ours != 0 or theirs != 0:
            checks.append(PositionCheck(venue=client.venue, account=client.account,
                                        symbol=symbol, tracked_qty=ours, venue_qty=theirs))
    return checks


async def _ask(root: Supervisor, name: str, message: object, kind: type[T]) -> T | None:
    try:
        reply = await root.registry.lookup(name).ask(message, timeout_s=STATUS_ASK_S)
    except ActorError:
        return None
    return reply if isinstance(reply, kind) else None


async def _ask_list(root: Supervisor, name: str, message: object, kind: type[T]) -> list[T]:
    try:
        reply = await root.registry.lookup(name).ask(message, timeout_s=STATUS_ASK_S)
    except ActorError:
        return []
    return [item for item in reply if isinstance(item, kind)] if isinstance(reply, list) else []
