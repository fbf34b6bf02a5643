"""Backpack's signed private order stream, `account.orderUpdate` (venues.md §2.2, §2.5).

`open_user_frames` connects, sends one signed `SUBSCRIBE` and yields `UserFrames`, the iterator
`BackpackAccount.stream_user` hands out. This module knows the wire and the stream's rules; the
account turns a decoded `OrderUpdate` into our `Fill`/`VenueOrder` (it owns the client-id map
and the status tables), so the REST and stream paths share one mapping.

The rules:
- Frames are wrapped `{"stream": name, "data": {...}}`; `data` is decoded into `OrderUpdate`
  by a `msgspec` decoder built once. `E`/`T` are **µs**. Trigger events are skipped.
- A subscription refusal (`{"error": ...}`, with or without `id`/`result`, or a bare
  `{"code", "message"}`) raises: `VenueAuthError` for a signature/key refusal,
  `VenueTransportError` otherwise ("Request has expired" is a clock problem: reconnecting
  with a fresh timestamp may fix it). Without this check a refused subscription would look
  like a quiet account.
- A frame that may carry a fill or an order state and that we cannot read (not JSON, an
  order event (`ORDER_EVENTS`) that does not decode, holds a non-finite number or an unknown
  side or status) ends the stream with `VenueTransportError`: the caller reconnects and
  reconciles over REST at once rather than miss that fill until some later reconnect. Other
  unreadable frames (trigger or unknown events) are logged (one line, the reason but never
  the payload) and skipped. Ids the doc does not pin to one JSON type (`t`, `c`) are read as
  a number or a string.
- Close 1000/1001 ends the iterator; any other close raises `VenueTransportError`.
- Order states never regress (`OrderGate`): user events can arrive out of order (§4 pitfall
  11 shows it on Aster; nothing promises otherwise here), so an order update older than the
  newest one emitted for that order is dropped. Fills are always emitted.
- Funding: the order stream carries none, and Backpack has no private funding stream, so
  `UserFrames` polls `funding(since)` every `poll_s` (while the consumer is waiting for the
  next event) and yields payments not seen yet, deduplicated by (timestamp, symbol). A failed
  poll is logged and retried at the next interval; the order stream stays up.

Ping/pong: trio-websocket answers the server's pings (every 60 s, Close after 120 s without a
pong, §2.5) in its own reader task, as long as the consumer keeps reading.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, Final

import msgspec
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from .._exceptions import VenueAuthError, VenueError, VenueTransportError
from .._market_ws import closed_error, open_stream_websocket
from .._models import Fill, FundingPayment, OrderStatus, UserEvent, VenueOrder
from ._errors import VENUE

FUNDING_POLL_S: Final = 60.0
"""How often the stream asks REST for new funding payments. Backpack funds hourly or less
often, so a minute's delay costs nothing, and the history call is not cheap."""
MAX_TRACKED_ORDERS: Final = 65536
"""`OrderGate` remembers this many orders (least recently updated forgotten first)."""
ORDER_STREAM: Final = "account.orderUpdate"
WHAT: Final = "user stream"
ORDER_EVENTS: Final = frozenset(
    {"orderAccepted", "orderCancelled", "orderExpired", "orderFill", "orderModified"})
TRIGGER_EVENTS: Final = frozenset({"triggerPlaced", "triggerFailed"})
_TERMINAL: Final = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED})
_AUTH_WORDS: Final = ("signature", "unauthori", "api key", "apikey", "permission")
_MAX_ERROR_CHARS: Final = 200

logger = logging.getLogger("exchanges.backpack")


class OrderUpdate(msgspec.Struct, frozen=True):
    """One `account.orderUpdate` event, in the venue's one-letter fields (§2.5)."""

    e: str
    """Event type: orderAccepted, orderCancelled, orderExpired, orderFill, orderModified, …"""
    E: int
    """Event time, µs."""
    s: str
    i: str = ""
    """Venue order id (always on order events)."""
    S: str = ""
    """`Bid` or `Ask` (trigger events may lack it)."""
    c: int | str | None = None
    """Our uint32 clientId, only if one was set (a number; a string of digits accepted)."""
    o: str = ""
    """Order type: `LIMIT`, `MARKET`."""
    f: str = ""
    """Time in force."""
    q: Decimal | None = None
    p: Decimal | None = None
    X: str = ""
    """Order status (§2.1)."""
    z: Decimal = Decimal(0)
    """Cumulative filled quantity."""
    T: int | None = None
    """Engine time, µs."""
    R: str = ""
    """Expiry reason (orderExpired only)."""
    y: bool = False
    """Post-only."""
    r: bool = False
    """Reduce-only."""
    t: int | str | None = None
    """Trade id (orderFill only), as `tradeId` in the fill history (a number or a string: the
    fill id is its text either way)."""
    l: Decimal | None = None  # noqa: E741 - the venue's name
    """Fill quantity."""
    L: Decimal | None = None
    """Fill price."""
    n: Decimal | None = None
    """Fee."""
    N: str = ""
    """Fee asset."""
    m: bool = False
    """Maker."""

    def money_finite(self) -> bool:
        # msgspec accepts "NaN" and "Infinity" as decimals; no order holds them.
        return all(v is None or v.is_finite() for v in (self.q, self.p, self.z, self.l,
                                                        self.L, self.n))


class _Frame(msgspec.Struct):
    stream: str | None = None
    data: OrderUpdate | None = None
    error: Any = None
    code: Any = None
    message: Any = None


class _DataHead(msgspec.Struct):
    e: Any = None


class _FrameHead(msgspec.Struct):
    data: _DataHead | None = None


_FRAME: Final = msgspec.json.Decoder(_Frame)
_FRAME_HEAD: Final = msgspec.json.Decoder(_FrameHead)

Converter = Callable[[OrderUpdate], tuple[Fill | None, VenueOrder | None]]
"""An update to (the fill it reports, the order state it reports); raises KeyError or
ValueError for values it cannot map (an unknown side or status)."""
FundingSource = Callable[[int], Awaitable[list[FundingPayment]]]


def subscribe_message(signature: Sequence[str]) -> str:
    """`{"method":"SUBSCRIBE","params":["account.orderUpdate"],"signature":[...]}` (§2.5)."""
    return msgspec.json.encode({"method": "SUBSCRIBE", "params": [ORDER_STREAM],
                                "signature": list(signature)}).decode()


def subscription_error(error: object, code: object, message: object) -> VenueError:
    """The error for a refused subscription: the venue's code and words, never our request."""
    if isinstance(error, dict):
        code = error.get("code", code)
        message = error.get("message", message)
    elif error is not None:
        message = error
    words = str(message if message is not None else "")[:_MAX_ERROR_CHARS]
    text = f"{WHAT} subscription refused: {words}" + (
        f" (code {code})" if code is not None else "")
    lowered = f"{code} {words}".lower()
    if any(word in lowered for word in _AUTH_WORDS):
        return VenueAuthError(VENUE, text)
    return VenueTransportError(VENUE, text)


class OrderGate:
    """Lets an order update through only if it is newer than the newest emitted for that order.

    Newer means: more cumulative fill, then (same fill) terminal over live, then a later event
    time. Once an order is terminal only a terminal update reporting more fill gets through:
    it never goes back to a live state, nor flips between end states. Pure, no I/O.
    """

    def __init__(self, capacity: int = MAX_TRACKED_ORDERS) -> None:
        self._capacity = capacity
        self._newest: OrderedDict[str, tuple[Decimal, bool, int]] = OrderedDict()

    def admit(self, order: VenueOrder, event_us: int) -> bool:
        key = (order.filled_qty, order.status in _TERMINAL, event_us)
        newest = self._newest.get(order.venue_order_id)
        if newest is not None and (
                key <= newest or (newest[1] and not (key[1] and key[0] > newest[0]))):
            return False
        self._newest[order.venue_order_id] = key
        self._newest.move_to_end(order.venue_order_id)
        if len(self._newest) > self._capacity:
            self._newest.popitem(last=False)
        return True


class UserFrames:
    """The iterator `stream_user` yields: fills, order states and funding payments."""

    def __init__(self, ws: WebSocketConnection, convert: Converter, funding: FundingSource, *,
                 funding_since_ns: int, poll_s: float) -> None:
        self._ws = ws
        self._convert = convert
        self._funding = funding
        self._funding_since_ns = funding_since_ns
        self._funding_seen: set[tuple[int, str]] = set()
        self._poll_s = poll_s
        self._next_poll = trio.current_time() + poll_s
        self._gate = OrderGate()
        self._pending: deque[UserEvent] = deque()

    def __aiter__(self) -> UserFrames:
        return self

    async def __anext__(self) -> UserEvent:
        while not self._pending:
            if trio.current_time() >= self._next_poll:
                await self._poll_funding()
                self._next_poll = trio.current_time() + self._poll_s
                continue
            with trio.move_on_at(self._next_poll):
                try:
                    raw = await self._ws.get_message()
                except ConnectionClosed as exc:
                    error = closed_error(VENUE, exc, what=WHAT, ws=self._ws)
                    if error is None:
                        raise StopAsyncIteration from None
                    raise error from None
                self._handle(raw)
        return self._pending.popleft()

    def _handle(self, raw: str | bytes) -> None:
        try:
            frame = _FRAME.decode(raw)
        except msgspec.DecodeError as exc:
            try:
                head = _FRAME_HEAD.decode(raw)
            except msgspec.DecodeError:
                raise _unreadable(f"not an event: {exc}") from None
            kind = head.data.e if head.data is not None else None
            if kind in ORDER_EVENTS:
                raise _unreadable(f"{kind}: {exc}") from None
            logger.warning("%s %s: skipped malformed frame: %s", VENUE, WHAT, exc)
            return
        if frame.error is not None or (frame.data is None and frame.code is not None):
            raise subscription_error(frame.error, frame.code, frame.message)
        update = frame.data
        if update is None or update.e in TRIGGER_EVENTS:
            return  # an acknowledgement, or a trigger we never place
        if update.e not in ORDER_EVENTS:
            logger.debug("%s %s: skipped %s event", VENUE, WHAT, update.e)
            return
        if not update.money_finite():
            raise _unreadable(f"{update.e}: non-finite number")
        try:
            fill, order = self._convert(update)
        except (KeyError, ValueError, VenueError) as exc:
            raise _unreadable(f"{update.e}: {type(exc).__name__}") from None
        if fill is not None:
            self._pending.append(fill)
        if order is not None and self._gate.admit(order, update.E):
            self._pending.append(order)

    async def _poll_funding(self) -> None:
        try:
            payments = await self._funding(self._funding_since_ns)
        except VenueError as exc:
            logger.warning("%s %s: funding poll failed, retrying in %.0f s: %s",
                           VENUE, WHAT, self._poll_s, exc)
            return
        for payment in payments:
            key = (payment.ts_venue_ns, payment.symbol)
            if key in self._funding_seen or payment.ts_venue_ns < self._funding_since_ns:
                continue
            self._funding_seen.add(key)
            self._pending.append(payment)
        if self._funding_seen:
            # Ask only from the newest seen on; forget what can no longer come back.
            self._funding_since_ns = max(ts for ts, _ in self._funding_seen)
            self._funding_seen = {k for k in self._funding_seen
                                  if k[0] >= self._funding_since_ns}


def _unreadable(reason: str) -> VenueTransportError:
    """The error that ends the stream for an order event we cannot read (module docstring).
    `reason` is msgspec's (paths, never values) or an exception type: no payload."""
    logger.error("%s %s: unreadable frame, reconnecting: %s", VENUE, WHAT, reason)
    return VenueTransportError(VENUE, f"{WHAT}: unreadable frame: {reason}")


@asynccontextmanager
async def open_user_frames(url: str, signature: Sequence[str], convert: Converter,
                           funding: FundingSource, *, poll_s: float = FUNDING_POLL_S,
                           ) -> AsyncIterator[UserFrames]:
    """Connect to `url`, subscribe to `account.orderUpdate` with `signature` (from
    `BackpackAuth.subscribe_signature`) and yield the frames until the context ends.

    Funding payments at or after the signature's timestamp are polled for. A failed connect
    or send raises `VenueTransportError` on entry; a refusal arrives as a frame and raises
    from the iterator.
    """
    message = subscribe_message(signature)
    since_ns = int(signature[2]) * 1_000_000
    async with open_stream_websocket(VENUE, url, what=WHAT) as ws:
        try:
            await ws.send_message(message)
        except ConnectionClosed as exc:
            raise (closed_error(VENUE, exc, what=WHAT) or VenueTransportError(
                VENUE, f"{WHAT} closed before the subscription was sent")) from None
        yield UserFrames(ws, convert, funding, funding_since_ns=since_ns, poll_s=poll_s)
