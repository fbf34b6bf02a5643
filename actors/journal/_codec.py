"""Records to SQL parameters and rows back to records. Pure: no connection, no trio.

Decimals are stored as TEXT, `str(value)` going in and `Decimal(text)` coming out, which is
exact to the last digit and keeps the exponent ("0.010" stays "0.010"). REAL would round
0.1 to 0.1000000000000000055…, and a journal that sums fills must not drift from the venue.
The price of TEXT is that SQL cannot compare or sum money; nothing here needs it to, and
reporting folds Decimals in Python. Enums are stored as their `.value` strings, so the file
reads well in the sqlite3 shell and survives reordering an enum.

Encoding checks every field's type as it goes, because msgspec does not check types when a
Struct is built in code: a float price or a bool timestamp would otherwise reach the file.
The journal encodes on the caller's side, so a bad record fails alone, before it is queued.
"""

from __future__ import annotations

from decimal import Decimal
from enum import Enum
from typing import Any, Final, NamedTuple

import msgspec

from exchanges import (
    Fill,
    FundingPayment,
    Liquidity,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)

from ._records import (
    TRADING_STATES,
    EventRecorded,
    FillRecorded,
    FundingRecorded,
    OrderRecorded,
    TradingStateRecorded,
)

SqlValue = str | int | None
Row = tuple[SqlValue, ...]
StoredRow = tuple[Any, ...]
"""A row as sqlite3 returns it: TEXT as str, INTEGER as int, exactly as encoded."""

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
TERMINAL_STATUSES_SQL: Final = ", ".join(f"'{s.value}'" for s in OrderStatus if s.is_terminal)

ORDER_COLUMNS: Final = (
    "venue", "account", "client_id", "ts_ns", "strategy", "symbol", "side", "order_type", "tif",
    "qty", "price", "reduce_only", "status", "filled_qty", "venue_order_id", "reason",
)
FILL_COLUMNS: Final = (
    "venue", "account", "fill_id", "client_id", "venue_order_id", "symbol", "side", "qty",
    "price", "fee", "fee_asset", "liquidity", "ts_venue_ns", "strategy",
)
FUNDING_COLUMNS: Final = (
    "venue", "account", "symbol", "ts_venue_ns", "amount", "rate", "position_qty", "mark_price",
)
EVENT_COLUMNS: Final = ("ts_ns", "kind", "source", "detail")
TRADING_STATE_COLUMNS: Final = ("ts_ns", "state", "reason", "actor")


def _insert(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def _order_upsert() -> str:
    # Latest wins, except terminal -> non-terminal (a late "open" after "filled"). The row-value
    # IS NOT makes an identical repeat a no-op, so rowcount says whether anything changed.
    mutable = ORDER_COLUMNS[3:]
    return (
        f"{_insert('orders', ORDER_COLUMNS)} ON CONFLICT (venue, account, client_id) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in mutable)
        + f" WHERE (orders.status NOT IN ({TERMINAL_STATUSES_SQL})"
        + f" OR excluded.status IN ({TERMINAL_STATUSES_SQL}))"
        + f" AND ({', '.join(f'orders.{c}' for c in mutable)})"
        + f" IS NOT ({', '.join(f'excluded.{c}' for c in mutable)})"
    )


ORDER_SQL: Final = _order_upsert()
FILL_SQL: Final = _insert("fills", FILL_COLUMNS) + " ON CONFLICT (venue, fill_id) DO NOTHING"
FUNDING_SQL: Final = (
    _insert("funding", FUNDING_COLUMNS)
    + " ON CONFLICT (venue, account, symbol, ts_venue_ns) DO NOTHING"
)
EVENT_SQL: Final = _insert("events", EVENT_COLUMNS)
TRADING_STATE_SQL: Final = _insert("trading_state", TRADING_STATE_COLUMNS)


class Encoded(NamedTuple):
    """One record as the single statement that stores it."""

    sql: str
    params: Row


# ---- field checks: each returns the stored form --------------------------------------------


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{where} must be str, got {type(value).__name__}")
    return value


def _int(value: object, where: str) -> int:
    if type(value) is not int:  # bool is an int subclass and never a timestamp
        raise TypeError(f"{where} must be int, got {type(value).__name__}")
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError(f"{where} does not fit SQLite's 64-bit integer")
    return value


def _money(value: object, where: str) -> str:
    if not isinstance(value, Decimal):
        raise TypeError(f"{where} must be Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"{where} must be a finite Decimal")
    return str(value)


def _enum(value: object, kind: type[Enum], where: str) -> str:
    if not isinstance(value, kind):
        raise TypeError(f"{where} must be {kind.__name__}, got {type(value).__name__}")
    return str(value.value)


# ---- encode --------------------------------------------------------------------------------


def _encode_order(r: OrderRecorded) -> Encoded:
    w = "OrderRecorded."
    if not isinstance(r.reduce_only, bool):
        raise TypeError(f"{w}reduce_only must be bool, got {type(r.reduce_only).__name__}")
    price = None if r.price is None else _money(r.price, w + "price")
    return Encoded(ORDER_SQL, (
        _text(r.venue, w + "venue"), _text(r.account, w + "account"),
        _text(r.client_id, w + "client_id"), _int(r.ts_ns, w + "ts_ns"),
        _text(r.strategy, w + "strategy"), _text(r.symbol, w + "symbol"),
        _enum(r.side, Side, w + "side"), _enum(r.order_type, OrderType, w + "order_type"),
        _enum(r.tif, TimeInForce, w + "tif"), _money(r.qty, w + "qty"), price,
        int(r.reduce_only), _enum(r.status, OrderStatus, w + "status"),
        _money(r.filled_qty, w + "filled_qty"), _text(r.venue_order_id, w + "venue_order_id"),
        _text(r.reason, w + "reason"),
    ))


def _encode_fill(r: FillRecorded) -> Encoded:
    f = r.fill
    if not isinstance(f, Fill):
        raise TypeError(f"FillRecorded.fill must be Fill, got {type(f).__name__}")
    w = "FillRecorded.fill."
    return Encoded(FILL_SQL, (
        _text(f.venue, w + "venue"), _text(f.account, w + "account"),
        _text(f.fill_id, w + "fill_id"), _text(f.client_id, w + "client_id"),
        _text(f.venue_order_id, w + "venue_order_id"), _text(f.symbol, w + "symbol"),
        _enum(f.side, Side, w + "side"), _money(f.qty, w + "qty"), _money(f.price, w + "price"),
        _money(f.fee, w + "fee"), _text(f.fee_asset, w + "fee_asset"),
        _enum(f.liquidity, Liquidity, w + "liquidity"), _int(f.ts_venue_ns, w + "ts_venue_ns"),
        _text(r.strategy, "FillRecorded.strategy"),
    ))


def _encode_funding(r: FundingRecorded) -> Encoded:
    p = r.payment
    if not isinstance(p, FundingPayment):
        raise TypeError(f"FundingRecorded.payment must be FundingPayment, got {type(p).__name__}")
    w = "FundingRecorded.payment."
    return Encoded(FUNDING_SQL, (
        _text(p.venue, w + "venue"), _text(p.account, w + "account"),
        _text(p.symbol, w + "symbol"), _int(p.ts_venue_ns, w + "ts_venue_ns"),
        _money(p.amount, w + "amount"), _money(p.rate, w + "rate"),
        _money(p.position_qty, w + "position_qty"), _money(p.mark_price, w + "mark_price"),
    ))


def _encode_event(r: EventRecorded) -> Encoded:
    detail = _text(r.detail, "EventRecorded.detail")
    try:
        msgspec.json.decode(detail)
    except msgspec.DecodeError:
        raise ValueError("EventRecorded.detail must be JSON text") from None
    return Encoded(EVENT_SQL, (
        _int(r.ts_ns, "EventRecorded.ts_ns"), _text(r.kind, "EventRecorded.kind"),
        _text(r.source, "EventRecorded.source"), detail,
    ))


def _encode_trading_state(r: TradingStateRecorded) -> Encoded:
    if _text(r.state, "TradingStateRecorded.state") not in TRADING_STATES:
        raise ValueError(f"TradingStateRecorded.state must be one of {sorted(TRADING_STATES)}")
    return Encoded(TRADING_STATE_SQL, (
        _int(r.ts_ns, "TradingStateRecorded.ts_ns"), r.state,
        _text(r.reason, "TradingStateRecorded.reason"),
        _text(r.actor, "TradingStateRecorded.actor"),
    ))


def encode(record: object) -> Encoded:
    """The statement that stores `record`. Raises TypeError/ValueError for a malformed one."""
    match record:  # fills first: they are the hot path
        case FillRecorded():
            return _encode_fill(record)
        case OrderRecorded():
            return _encode_order(record)
        case FundingRecorded():
            return _encode_funding(record)
        case EventRecorded():
            return _encode_event(record)
        case TradingStateRecorded():
            return _encode_trading_state(record)
    raise TypeError(
        "the journal stores OrderRecorded, FillRecorded, FundingRecorded, EventRecorded and "
        f"TradingStateRecorded records; got {type(record).__name__}"
    )


# ---- decode: rows hold exactly what encode stored ---------------------------------------


def decode_order(row: StoredRow) -> OrderRecorded:
    (venue, account, client_id, ts_ns, strategy, symbol, side, order_type, tif, qty, price,
     reduce_only, status, filled_qty, venue_order_id, reason) = row
    return OrderRecorded(
        ts_ns=ts_ns, strategy=strategy, venue=venue, account=account, client_id=client_id,
        symbol=symbol, side=Side(side), order_type=OrderType(order_type), tif=TimeInForce(tif),
        qty=Decimal(qty), price=None if price is None else Decimal(price),
        reduce_only=bool(reduce_only), status=OrderStatus(status),
        filled_qty=Decimal(filled_qty), venue_order_id=venue_order_id, reason=reason,
    )


def decode_fill(row: StoredRow) -> FillRecorded:
    (venue, account, fill_id, client_id, venue_order_id, symbol, side, qty, price, fee,
     fee_asset, liquidity, ts_venue_ns, strategy) = row
    fill = Fill(
        venue=venue, account=account, fill_id=fill_id, client_id=client_id,
        venue_order_id=venue_order_id, symbol=symbol, side=Side(side), qty=Decimal(qty),
        price=Decimal(price), fee=Decimal(fee), fee_asset=fee_asset,
        liquidity=Liquidity(liquidity), ts_venue_ns=ts_venue_ns,
    )
    return FillRecorded(fill=fill, strategy=strategy)


def decode_funding(row: StoredRow) -> FundingRecorded:
    venue, account, symbol, ts_venue_ns, amount, rate, position_qty, mark_price = row
    payment = FundingPayment(
        venue=venue, account=account, symbol=symbol, amount=Decimal(amount),
        rate=Decimal(rate), position_qty=Decimal(position_qty),
        mark_price=Decimal(mark_price), ts_venue_ns=ts_venue_ns,
    )
    return FundingRecorded(payment=payment)


def decode_event(row: StoredRow) -> EventRecorded:
    ts_ns, kind, source, detail = row
    return EventRecorded(ts_ns=ts_ns, kind=kind, source=source, detail=detail)


def decode_trading_state(row: StoredRow) -> TradingStateRecorded:
    ts_ns, state, reason, actor = row
    return TradingStateRecorded(ts_ns=ts_ns, state=state, reason=reason, actor=actor)
