"""`paper_match`: orders per second the paper MatchingEngine sustains under a realistic mix.

The pure engine, driven directly (no trio, no venue, no state file): one symbol with a
10-level book a tick apart, two accounts. A market maker (`mm`) posts post-only limits that
rest a few ticks behind the touch and cancels its oldest order whenever more than
`RESTING_MAX` are open; a hedger (`hedge`) sends IOC limits and market orders that walk
1 + Exp(mean 2) levels, capped at 10 (about 2.4 on average), alternating sides so its
position stays bounded. Every `BOOK_EVERY` orders a new book arrives (the mid random-walks,
so it crosses resting orders now and then: maker fills), every `TRADE_EVERY` orders a
market trade prints (filling resting orders it trades through). A market order that finds
one side eaten whole is refused ("no market") until the next book, as the venue would;
refusals are place() calls too and are reported by reason.

The script (books, trades, requests) is made before the clock starts, from one seed, so
every round does the same work and the rate measures the engine, not the generator. Which
order to cancel is decided while running, from the ledger (filled orders are gone).

orders_per_s = place() calls / wall time of the whole mix (cancels, book updates and trade
prints included: that is what the engine must keep up with). One warm-up round, then
`ROUNDS` rounds on fresh engines; the median round is reported, with its mix. The collector
runs as usual during a round, but the script is frozen out of its sight (`gc.freeze`): a
big heap of scaffolding would make full collections rarer and flatter the engine.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from exchanges import (
    Fill,
    Instrument,
    Liquidity,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
    VenueRejectedError,
)
from exchanges.paper import Effect, Ledger, Level, MatchingEngine

ROUNDS: Final = 5
ORDERS_PER_ROUND: Final = 200_000
WARMUP_ORDERS: Final = 50_000
TARGET_ORDERS_PER_S: Final = 50_000
SEED: Final = 20_240_601

BOOK_EVERY: Final = 4  # orders between book updates (a taker rarely finds the book eaten)
TRADE_EVERY: Final = 10  # orders between market trade prints
POST_FRACTION: Final = 0.6  # the rest splits evenly into IOC limits and market orders
RESTING_MAX: Final = 20  # what a few market makers keep open on one symbol
TAKER_EXTRA_LEVELS: Final = 2.0  # a taker walks 1 + Exp(mean 2) levels, capped at 10
MAX_BEHIND_TICKS: Final = 5  # post-only orders rest 0..5 ticks behind the touch
MID_STEP_TICKS: Final = 3.0  # std. dev. of the mid's move per book update
LEVELS: Final = 10
SPREAD_TICKS: Final = 4

SYMBOL: Final = "BTC-PERP"
TICK: Final = Decimal("0.5")
STEP: Final = Decimal("0.001")
MAKER_QTY: Final = Decimal("0.010")
LEVEL_QTY: Final = Decimal("0.5")
START_MID_TICKS: Final = 120_000  # 60,000 USDT
DEPOSIT: Final = Decimal(50_000_000)  # ample: no order in the mix is refused for margin
MM: Final = "mm"
HEDGE: Final = "hedge"

# Script op codes: a tuple per op, its first item the kind.
_BOOK, _TRADE, _POST, _TAKE = 0, 1, 2, 3

INSTRUMENT: Final = Instrument(
    venue="paper", symbol=SYMBOL, base="BTC", quote="USDT", tick_size=TICK, step_size=STEP,
    min_qty=STEP, min_notional=Decimal(5),
)


@dataclass
class RoundResult:
    seconds: float
    orders: int
    post_only: int
    ioc: int
    market: int
    cancels: int
    book_updates: int
    trades: int
    fills_maker: int
    fills_taker: int
    rejected: dict[str, int]
    """Refusals by reason: place() calls too (they are orders the engine had to judge)."""
    mean_open_orders: float

    @property
    def orders_per_s(self) -> float:
        return self.orders / self.seconds


# ---- the script ------------------------------------------------------------------------------


def _book(rng: random.Random, mid_ticks: int) -> tuple[list[Level], list[Level]]:
    """Like SyntheticMarket.book: a tick apart, sizes growing with depth, randomised."""
    best_bid = mid_ticks - SPREAD_TICKS // 2
    best_ask = best_bid + SPREAD_TICKS
    bids, asks = [], []
    random_ = rng.random
    for depth in range(LEVELS):
        size = _SIZES[depth][int(random_() * _SIZE_CHOICES)]
        bids.append(Level(_price(best_bid - depth), size))
        asks.append(Level(_price(best_ask + depth), size))
    return bids, asks


_SIZE_CHOICES: Final = 101
_SIZES: Final = [
    # level_qty × (1 + depth/2) × U(0.5, 1.5), on the step: a table keeps the script cheap
    [(LEVEL_QTY * (1 + Decimal(depth) / 2) * (Decimal(50 + k) / 100)).quantize(STEP)
     for k in range(_SIZE_CHOICES)]
    for depth in range(LEVELS)
]
_PRICES: dict[int, Decimal] = {}


def _price(ticks: int) -> Decimal:
    price = _PRICES.get(ticks)
    if price is None:
        price = _PRICES[ticks] = ticks * TICK
    return price


def _script(orders: int, seed: int) -> list[tuple[Any, ...]]:
    """Books, trades and requests, in order. Levels are fresh objects: the engine eats them."""
    rng = random.Random(seed)
    mid_ticks = START_MID_TICKS
    bids, asks = _book(rng, mid_ticks)
    ops: list[tuple[Any, ...]] = [(_BOOK, bids, asks)]
    taker_side = Side.BUY
    for n in range(orders):
        if n % BOOK_EVERY == 0 and n:
            mid_ticks += round(rng.gauss(0, MID_STEP_TICKS))
            bids, asks = _book(rng, mid_ticks)
            ops.append((_BOOK, bids, asks))
        if n % TRADE_EVERY == TRADE_EVERY - 1:
            aggressor = Side.BUY if rng.random() < 0.5 else Side.SELL
            levels = asks if aggressor is Side.BUY else bids
            depth = min(LEVELS - 1, int(rng.expovariate(1.5)))
            qty = sum((level.qty for level in levels[: depth + 1]), Decimal(0))
            ops.append((_TRADE, levels[depth].price, qty, aggressor))
        draw = rng.random()
        if draw < POST_FRACTION:
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            behind = int(rng.random() * (MAX_BEHIND_TICKS + 1)) * TICK
            price = bids[0].price - behind if side is Side.BUY else asks[0].price + behind
            ops.append((_POST, OrderRequest(
                client_id=f"p{n}", symbol=SYMBOL, side=side, order_type=OrderType.LIMIT,
                qty=MAKER_QTY, price=price, tif=TimeInForce.POST_ONLY,
            )))
            continue
        levels = asks if taker_side is Side.BUY else bids
        walk = 1 + min(LEVELS - 1, int(rng.expovariate(1 / TAKER_EXTRA_LEVELS)))
        qty = sum((level.qty for level in levels[:walk]), Decimal(0))
        if draw < POST_FRACTION + (1 - POST_FRACTION) / 2:
            request = OrderRequest(
                client_id=f"i{n}", symbol=SYMBOL, side=taker_side, order_type=OrderType.LIMIT,
                qty=qty, price=levels[walk - 1].price, tif=TimeInForce.IOC,
            )
        else:
            request = OrderRequest(
                client_id=f"m{n}", symbol=SYMBOL, side=taker_side, order_type=OrderType.MARKET,
                qty=qty,
            )
        ops.append((_TAKE, request))
        taker_side = taker_side.opposite
    return ops


# ---- one round -------------------------------------------------------------------------------


class _FillCounter:
    """on_effect: counts fills by liquidity (the venue's own hook persists and publishes)."""

    __slots__ = ("maker", "taker")

    def __init__(self) -> None:
        self.maker = 0
        self.taker = 0

    def __call__(self, effect: Effect) -> None:
        if isinstance(effect, Fill):
            if effect.liquidity is Liquidity.MAKER:
                self.maker += 1
            else:
                self.taker += 1


def _run(ops: list[tuple[Any, ...]]) -> RoundResult:
    counter = _FillCounter()
    ledger = Ledger("paper", "USDT")
    engine = MatchingEngine("paper", [INSTRUMENT], ledger, on_effect=counter)
    now_ns = 1_760_000_000_000_000_000
    engine.deposit(MM, "USDT", DEPOSIT, now_ns)
    engine.deposit(HEDGE, "USDT", DEPOSIT, now_ns)
    mm_open = ledger.account(MM).open_orders
    place, cancel = engine.place, engine.cancel
    on_book, on_trade = engine.on_book, engine.on_trade
    posted: deque[str] = deque()
    counts = dict.fromkeys(("post", "ioc", "market", "cancel", "book", "trade"), 0)
    rejected: dict[str, int] = {}
    open_sum = 0

    started = time.perf_counter_ns()
    for op in ops:
        now_ns += 1_000
        kind = op[0]
        if kind == _POST:
            request: OrderRequest = op[1]
            try:
                place(MM, request, now_ns)
                posted.append(request.client_id)
                counts["post"] += 1
            except VenueRejectedError as exc:
                rejected[exc.reason.value] = rejected.get(exc.reason.value, 0) + 1
            while len(mm_open) > RESTING_MAX:
                client_id = posted.popleft()
                if client_id in mm_open:
                    cancel(MM, client_id, now_ns)
                    counts["cancel"] += 1
            open_sum += len(mm_open)
        elif kind == _TAKE:
            request = op[1]
            try:
                place(HEDGE, request, now_ns)
                counts["market" if request.order_type is OrderType.MARKET else "ioc"] += 1
            except VenueRejectedError as exc:
                # A taker that ate one side whole leaves no mid: the next market order is
                # refused (INVALID, "no market") until the next book, as on the venue.
                rejected[exc.reason.value] = rejected.get(exc.reason.value, 0) + 1
        elif kind == _BOOK:
            on_book(SYMBOL, op[1], op[2], now_ns)
            counts["book"] += 1
        else:
            on_trade(SYMBOL, op[1], op[2], op[3], now_ns)
            counts["trade"] += 1
    seconds = (time.perf_counter_ns() - started) / 1e9

    orders = counts["post"] + counts["ioc"] + counts["market"] + sum(rejected.values())
    assert orders == engine.orders_received
    return RoundResult(
        seconds=seconds, orders=orders, post_only=counts["post"], ioc=counts["ioc"],
        market=counts["market"], cancels=counts["cancel"], book_updates=counts["book"],
        trades=counts["trade"], fills_maker=counter.maker, fills_taker=counter.taker,
        rejected=rejected, mean_open_orders=open_sum / max(1, counts["post"]),
    )


def _round(orders: int, seed: int) -> RoundResult:
    # The script is scaffolding: made with the collector off, then frozen out of its sight,
    # so the collections during the round traverse what the engine allocates (its orders,
    # fills, the ledger's ever-growing fill list), as they would in a venue, and nothing more.
    gc.disable()
    try:
        ops = _script(orders, seed)
    finally:
        gc.enable()
    gc.collect()
    gc.freeze()
    try:
        return _run(ops)
    finally:
        del ops
        gc.unfreeze()
        gc.collect()


async def run_paper_match() -> dict[str, Any]:
    _round(WARMUP_ORDERS, SEED - 1)
    rounds = [_round(ORDERS_PER_ROUND, SEED) for _ in range(ROUNDS)]
    rates = [r.orders_per_s for r in rounds]
    median = sorted(rounds, key=lambda r: r.orders_per_s)[len(rounds) // 2]
    n = median.orders
    return {
        "orders_per_s": round(median.orders_per_s),
        "orders_per_s_rounds": [round(rate) for rate in rates],
        "orders_per_s_stdev": round(statistics.stdev(rates)) if len(rates) > 1 else 0,
        "orders_per_round": n,
        "book_updates_per_s": round(median.book_updates / median.seconds),
        "trades_per_s": round(median.trades / median.seconds),
        "cancels_per_s": round(median.cancels / median.seconds),
        "fills_per_s": round((median.fills_maker + median.fills_taker) / median.seconds),
        "mix": {
            "post_only": round(median.post_only / n, 3),
            "ioc": round(median.ioc / n, 3),
            "market": round(median.market / n, 3),
            "cancels_per_order": round(median.cancels / n, 3),
            "book_updates_per_order": round(median.book_updates / n, 3),
            "trades_per_order": round(median.trades / n, 3),
            "maker_fills_per_order": round(median.fills_maker / n, 3),
            "taker_fills_per_order": round(median.fills_taker / n, 3),
            "levels_walked_per_taker_order": round(
                median.fills_taker / max(1, median.ioc + median.market), 2
            ),
            "rejected": median.rejected,
            "mean_open_orders": round(median.mean_open_orders, 1),
            "book_levels": LEVELS,
        },
        "meets_targets": median.orders_per_s >= TARGET_ORDERS_PER_S,
    }
