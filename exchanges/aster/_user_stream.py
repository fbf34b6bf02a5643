"""Aster futures user-data stream: listen key, WebSocket and events (venues.md §1.8, §4.5-6).

`open_user_stream` gets the account's listen key (`POST /fapi/v1/listenKey`), connects to
`<ws_url>/ws/<listenKey>`, keeps the key alive from a sibling task and yields `UserFrames`,
an async iterator of `UserEvent`s. `AsterAccount.stream_user` is the public way in; the
mapping from the venue's order fields to ours stays in `_account.py` and is passed in, so the
REST answers and the stream share one mapping (client ids, statuses, time in force).

Events:

- `ORDER_TRADE_UPDATE` → a `VenueOrder`; when `x == "TRADE"` first a `Fill` (id
  `<symbol>:<t>:<i>`, the id `fills()` gives the same trade, so the journal dedupes the two;
  the order id tells apart the two sides of one trade when both are our accounts).
- `ACCOUNT_UPDATE` with reason `FUNDING_FEE` → the new `FundingPayment`s, read over REST
  (`GET /fapi/v1/income`): a cross-margin funding update carries a balance but no symbol or
  position, so the stream alone cannot say which payment it was. Other reasons are ignored:
  positions follow from fills, and reconciliation checks drift.
- `listenKeyExpired` → `VenueTransportError`, so the caller reconnects with a new key and
  reconciles the gap.
- Any other event (`MARGIN_CALL`, `ACCOUNT_CONFIG_UPDATE`, ...) is skipped (debug log).

"Ordered by event time", as this module means it (§1.8: events may arrive out of order):
fills are always passed on, since they dedupe by id. An order update is passed on only if it
is not older than the newest one already passed on for that order: older means a smaller
cumulative filled qty `z`, or the same `z` and an earlier event time `E`; and once a terminal
status (filled, cancelled, expired, rejected) was passed on, a non-terminal one never is.
Dropped updates are stale, never lost information: their fills went out anyway.

Error handling: a frame that may carry a fill or an order state and that we cannot read (not
JSON, a malformed `ORDER_TRADE_UPDATE` or `listenKeyExpired`, an unknown side or status)
ends the stream with `VenueTransportError`: the caller reconnects and reconciles over REST
at once instead of missing that fill until some later reconnect. A fill already read from
such a frame is passed on first (an unknown order status does not lose its fill). Frames we
do not need (other event types, a malformed `ACCOUNT_UPDATE`: funding is read over REST from
a cursor, so the next one catches up) are logged (one line, the reason but never the payload:
it carries account data) and skipped. A close with 1000 or 1001 (e.g.
the venue's planned 24 h disconnect) ends the iterator; any other close, a failed connect or
an expired key raises `VenueTransportError`. A failed keepalive is logged and retried after
`retry_s`; a keepalive the venue refuses for good (unknown key -1125, or bad credentials)
ends the stream with that error instead of letting it go quiet (§4.5).

Resource handling: the connection and the keepalive task live exactly as long as the
`open_user_stream` context. The key is NOT deleted on exit: Aster has one key per account
(a POST returns the active key), so a DELETE would also kill every other session of the
account, e.g. a second process or the next connection of this one (§4.5); an unused key
simply expires after 60 min.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import partial
from typing import Final

import msgspec
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from .._exceptions import VenueAuthError, VenueError, VenueRejectedError, VenueTransportError
from .._market_ws import closed_error, open_stream_websocket, single_exception
from .._models import Fill, FundingPayment, UserEvent, VenueOrder
from ._auth import VENUE
from ._rest import AsterRest

LISTEN_KEY_KEEPALIVE_S: Final = 30 * 60.0
"""PUT this often: half the key's 60 min life, so one failed keepalive still leaves time."""
LISTEN_KEY_RETRY_S: Final = 60.0
"""After a failed keepalive, try again this much sooner than the regular interval."""
FUNDING_LOOKBACK_MS: Final = 60 * 60 * 1000
"""The first funding update of a stream asks REST for payments since open minus this."""
MAX_TRACKED_ORDERS: Final = 10_000
"""Orders whose newest update is remembered for ordering; the oldest are forgotten first."""
WHAT: Final = "user stream"
_NS_PER_MS: Final = 1_000_000
_FATAL_KEEPALIVE_CODE: Final = "-1125"  # invalid listenKey (§1.9): the key is gone

logger = logging.getLogger(f"exchanges.{VENUE}")


# ---------------------------------------------------------------------------------------------
# Wire types: the venue's field names (§1.8), only what we read


class OrderUpdate(msgspec.Struct):
    """The `o` object of `ORDER_TRADE_UPDATE`."""

    s: str
    c: str
    S: str
    o: str
    X: str
    x: str
    i: int
    q: Decimal
    z: Decimal
    T: int
    p: Decimal = Decimal(0)
    f: str = "GTC"
    l: Decimal = Decimal(0)  # noqa: E741 (the venue's name)
    L: Decimal = Decimal(0)
    N: str = ""
    n: Decimal = Decimal(0)
    t: int = 0
    m: bool = False
    R: bool = False

    def is_finite(self) -> bool:
        return all(d.is_finite() for d in (self.q, self.z, self.p, self.l, self.L, self.n))


class _OrderTradeUpdate(msgspec.Struct, tag_field="e", tag="ORDER_TRADE_UPDATE"):
    E: int
    o: OrderUpdate


class _AccountData(msgspec.Struct):
    m: str


class _AccountUpdate(msgspec.Struct, tag_field="e", tag="ACCOUNT_UPDATE"):
    E: int
    a: _AccountData


class _ListenKeyExpired(msgspec.Struct, tag_field="e", tag="listenKeyExpired"):
    E: int = 0


class _Head(msgspec.Struct):
    e: str


_Event = _OrderTradeUpdate | _AccountUpdate | _ListenKeyExpired
_EVENT: Final = msgspec.json.Decoder(_Event)
_HEAD: Final = msgspec.json.Decoder(_Head)
_KNOWN: Final = frozenset({"ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE", "listenKeyExpired"})
_SKIPPABLE: Final = frozenset({"ACCOUNT_UPDATE"})
"""Known events whose loss costs nothing (module docstring); other unreadable frames end the
stream."""


class _Malformed(Exception):
    """A frame we cannot read; the message is msgspec's reason (paths, never values).
    `fatal`: it may have carried a fill or order state, so the stream must end."""

    def __init__(self, reason: str, *, fatal: bool) -> None:
        super().__init__(reason)
        self.fatal = fatal


def _decode(raw: str | bytes) -> _Event | None:
    """The event, or None for an event type we do not handle. Raises `_Malformed`."""
    try:
        event: _Event = _EVENT.decode(raw)
    except msgspec.DecodeError as exc:
        try:
            kind = _HEAD.decode(raw).e
        except msgspec.DecodeError:
            raise _Malformed(str(exc), fatal=True) from None
        if kind not in _KNOWN:
            return None
        raise _Malformed(f"{kind}: {exc}", fatal=kind not in _SKIPPABLE) from None
    if isinstance(event, _OrderTradeUpdate) and not event.o.is_finite():
        raise _Malformed("ORDER_TRADE_UPDATE: non-finite number", fatal=True)
    return event


# ---------------------------------------------------------------------------------------------
# Ordering


class _OrderSequencer:
    """Remembers, per order, the newest update passed on (see the module docstring)."""

    def __init__(self, capacity: int = MAX_TRACKED_ORDERS) -> None:
        self._capacity = capacity
        self._newest: OrderedDict[tuple[str, str], tuple[Decimal, int, bool]] = OrderedDict()

    def admit(self, order: VenueOrder, event_ms: int) -> bool:
        key = (order.symbol, order.venue_order_id)
        newest = self._newest.get(key)
        terminal = order.status.is_terminal
        if newest is not None:
            filled, ms, was_terminal = newest
            if (order.filled_qty, event_ms) < (filled, ms) or (was_terminal and not terminal):
                return False
            self._newest.move_to_end(key)
        self._newest[key] = (order.filled_qty, event_ms, terminal)
        if len(self._newest) > self._capacity:
            self._newest.popitem(last=False)
        return True


# ---------------------------------------------------------------------------------------------
# The iterator

OrderMapper = Callable[[OrderUpdate, int], VenueOrder]
"""(the `o` object, event time `E` in ms) → the order as we name it."""
FillMapper = Callable[[OrderUpdate], Fill]
"""The `o` object of a TRADE execution → the fill as `fills()` would give it."""
FundingSince = Callable[[int], Awaitable[list[FundingPayment]]]
"""`AccountClient.funding`: payments with ts_venue_ns >= since_ns, oldest first."""


class UserFrames:
    """The iterator `stream_user` yields: `UserEvent`s in arrival order, stale order updates
    dropped. A fill comes before the order update of the same event."""

    def __init__(self, ws: WebSocketConnection, *, order_of: OrderMapper, fill_of: FillMapper,
                 funding: FundingSince, opened_ms: int) -> None:
        self._ws = ws
        self._order_of = order_of
        self._fill_of = fill_of
        self._funding = funding
        self._funding_since_ns = (opened_ms - FUNDING_LOOKBACK_MS) * _NS_PER_MS
        self._sequencer = _OrderSequencer()
        self._ready: deque[UserEvent] = deque()
        self._failure: VenueError | None = None

    def __aiter__(self) -> UserFrames:
        return self

    async def __anext__(self) -> UserEvent:
        while not self._ready:
            if self._failure is not None:
                raise self._failure
            try:
                raw = await self._ws.get_message()
            except ConnectionClosed as exc:
                if self._failure is not None:
                    raise self._failure from None
                error = closed_error(VENUE, exc, what=WHAT, ws=self._ws)
                if error is None:
                    raise StopAsyncIteration from None
                raise error from None
            try:
                event = _decode(raw)
            except _Malformed as exc:
                if exc.fatal:
                    logger.error("%s %s: unreadable frame, reconnecting: %s", VENUE, WHAT, exc)
                    raise VenueTransportError(
                        VENUE, f"{WHAT}: unreadable frame: {exc}") from None
                logger.warning("%s %s: skipped malformed frame: %s", VENUE, WHAT, exc)
                continue
            await self._handle(event)
        return self._ready.popleft()

    async def fail(self, error: VenueError) -> None:
        """End the stream with `error` (from the keepalive task): the consumer gets it next."""
        self._failure = error
        await self._ws.aclose()

    async def _handle(self, event: _Event | None) -> None:
        if event is None:
            logger.debug("%s %s: skipped an event type we do not handle", VENUE, WHAT)
        elif isinstance(event, _OrderTradeUpdate):
            self._order_update(event)
        elif isinstance(event, _AccountUpdate):
            if event.a.m == "FUNDING_FEE":
                await self._funding_update()
        else:
            raise VenueTransportError(VENUE, f"{WHAT}: listen key expired")

    def _order_update(self, event: _OrderTradeUpdate) -> None:
        """Queue the fill and the order state; one we cannot map (an unknown side or status)
        ends the stream after whatever was read (see `unreadable_update`)."""
        try:
            fill = self._fill_of(event.o) if event.o.x == "TRADE" else None
        except VenueTransportError as exc:
            raise unreadable_update(WHAT, "fill", exc) from None
        if fill is not None:
            self._ready.append(fill)
        try:
            order = self._order_of(event.o, event.E)
        except VenueTransportError as exc:
            self._failure = unreadable_update(WHAT, "order update", exc)
            return
        if self._sequencer.admit(order, event.E):
            self._ready.append(order)
        else:
            logger.debug("%s %s: dropped a stale update of order %s", VENUE, WHAT,
                         order.venue_order_id)

    async def _funding_update(self) -> None:
        # A REST failure ends the stream (VenueTransportError): the reconnect reconciles.
        payments = await self._funding(self._funding_since_ns)
        if payments:
            self._funding_since_ns = max(p.ts_venue_ns for p in payments) + 1
        self._ready.extend(payments)


def unreadable_update(what: str, part: str, exc: VenueTransportError) -> VenueTransportError:
    """The error that ends a stream whose `part` ("fill", "order update") we cannot map: the
    reconnect reconciles over REST, which raises for it or reads what it became."""
    logger.error("%s %s: unreadable %s, reconnecting: %s", VENUE, what, part, exc)
    return VenueTransportError(VENUE, f"{what}: unreadable {part}: {exc}")


# ---------------------------------------------------------------------------------------------
# Keepalive and the context


async def keep_listen_key_alive(extend: Callable[[], Awaitable[object]],
                                fail: Callable[[VenueError], Awaitable[None]], *,
                                interval_s: float, retry_s: float, what: str = WHAT) -> None:
    """Call `extend` (the venue's listen-key PUT) every `interval_s`; retry after `retry_s`
    when it fails. Never raises: a refusal for good (unknown key, bad credentials) ends the
    stream through `fail`. Futures and spot streams share it."""
    delay = interval_s
    while True:
        await trio.sleep(delay)
        try:
            await extend()
        except (VenueAuthError, VenueRejectedError) as exc:
            if isinstance(exc, VenueAuthError) or exc.code == _FATAL_KEEPALIVE_CODE:
                logger.error("%s %s: listen key keepalive refused: %s", VENUE, what, exc)
                await fail(VenueTransportError(
                    VENUE, f"{what}: listen key keepalive refused: {exc}"))
                return
            logger.warning("%s %s: listen key keepalive failed (%s); retrying in %.0f s",
                           VENUE, what, exc, retry_s)
            delay = retry_s
        except VenueError as exc:
            logger.warning("%s %s: listen key keepalive failed (%s); retrying in %.0f s",
                           VENUE, what, exc, retry_s)
            delay = retry_s
        else:
            delay = interval_s


_single = single_exception


@asynccontextmanager
async def open_user_stream(rest: AsterRest, ws_url: str, *, order_of: OrderMapper,
                           fill_of: FillMapper, funding: FundingSince,
                           keepalive_s: float = LISTEN_KEY_KEEPALIVE_S,
                           retry_s: float = LISTEN_KEY_RETRY_S) -> AsyncIterator[UserFrames]:
    """Get the listen key, connect, keep the key alive, and yield the events until the
    context ends. A failed key request raises that `VenueError`, a failed connect
    `VenueTransportError`, on entry. The key is not deleted on exit (module docstring)."""
    key = await rest.new_listen_key()
    opened_ms = rest.now_ms()
    url = f"{ws_url.rstrip('/')}/ws/{key}"
    async with open_stream_websocket(VENUE, url, what=WHAT) as ws:
        frames = UserFrames(ws, order_of=order_of, fill_of=fill_of, funding=funding,
                            opened_ms=opened_ms)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(partial(keep_listen_key_alive, rest.keepalive_listen_key,
                                           frames.fail, interval_s=keepalive_s,
                                           retry_s=retry_s))
                try:
                    yield frames
                finally:
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The consumer's own exception (VenueTransportError from the iterator, say) comes
            # back wrapped by the nursery; callers catch VenueError, so unwrap a single one.
            single = _single(group)
            if single is None:
                raise
            raise single from None
