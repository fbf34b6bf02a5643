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
    """Every actor and venue is asked at once: status costs one round trip, not one per
    actor (a status poll must stay cheap beside trading)."""
    accounts = [(v.name, account) for v in assembly.config.venues for account in v.accounts]
    trading: list[TradingStateChanged | None] = [None]
    positions: list[PositionView] = []
    feeds: dict[str, FeedStatus] = {}
    orders: dict[tuple[str, str], list[VenueOrder]] = {}

    async def ask_trading() -> None:
        trading[0] = await _ask(root, RISK, GetTradingState(), TradingStateChanged)

    async def ask_positions() -> None:
        positions.extend(await _ask_list(root, POSITIONS, GetPositions(), PositionView))

    async def ask_feed(venue: str) -> None:
        feed = await _ask(root, f"feed.{venue}", GetFeedStatus(), FeedStatus)
        if feed is not None:
            feeds[venue] = feed

    async def ask_orders(venue: str, account: str) -> None:
        orders[(venue, account)] = await _ask_list(root, gateway_name(venue, account),
                                                   GetOrders(), VenueOrder)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask_trading)
        nursery.start_soon(ask_positions)
        for venue in assembly.markets:  # every venue has a feed, paper or live
            nursery.start_soon(ask_feed, venue)
        for venue, account in accounts:
            nursery.start_soon(ask_orders, venue, account)

    checks: dict[tuple[str, str], list[PositionCheck]] = {}

    async def check(venue: str, account: str) -> None:
        spot = {i.symbol for (v, _), i in assembly.instruments.items() if v == venue and i.is_spot}
        perp_positions = [p for p in positions if p.symbol not in spot]
        checks[(venue, account)] = await _position_checks(
            assembly.account_client(venue, account), perp_positions)

    async with trio.open_nursery() as nursery:
        for venue, account in accounts:
            nursery.start_soon(check, venue, account)
    snapshot = root.snapshot()
    return DaemonStatus(
        name=assembly.config.name, ts_ns=time.time_ns(), uptime_s=snapshot[0].uptime_s,
        trading=trading[0], actors=snapshot,
        feeds=[feeds[v] for v in assembly.markets if v in feeds], positions=positions,
        position_checks=[c for key in accounts for c in checks.get(key, [])],
        open_orders=[o for key in accounts for o in orders.get(key, [])],
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
