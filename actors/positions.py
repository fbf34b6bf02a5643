"""Positions: what we hold and what it earned, per venue, account, symbol and strategy.

Built from fills (already journaled when they arrive), so a restarted instance rebuilds the
same state from the journal. Uses the same average-price accounting as the paper venue, so the
two agree exactly. Marks come from the books topic (mid), for unrealized PnL.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from decimal import Decimal

from actors import Actor
from exchanges import BookTop, Fill, FundingPayment, Liquidity, PositionState

from ._recent import RecentIds
from .feed import MarketTopics
from .journal._service import JournalService
from .messages import (
    FundingPaid,
    GetPositions,
    OrderFilled,
    PositionView,
    StrategyPositions,
    fill_key,
    funding_key,
    quote_key,
)

ZERO = Decimal(0)
FUNDING_STRATEGY = ""  # funding is paid per account and symbol, not per strategy
RECENT_FILLS_PER_STRATEGY = 1_000  # more than can queue while a strategy restarts

PositionKey = tuple[str, str, str, str]  # venue, account, symbol, strategy


@dataclass
class PositionBook:
    """Pure: fills and funding in, views out. No trio, so it is tested directly."""

    states: dict[PositionKey, PositionState] = field(default_factory=dict)
    fees: dict[PositionKey, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    funding: dict[PositionKey, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    maker_volume: dict[PositionKey, Decimal] = field(
        default_factory=lambda: defaultdict(Decimal)
    )
    taker_volume: dict[PositionKey, Decimal] = field(
        default_factory=lambda: defaultdict(Decimal)
    )

    def apply_fill(self, strategy: str, fill: Fill) -> None:
        key = (fill.venue, fill.account, fill.symbol, strategy)
        state = self.states.get(key)
        if state is None:
            state = self.states[key] = PositionState()
        state.apply_fill(fill.side, fill.qty, fill.price)
        self.fees[key] += fill.fee
        volume = self.maker_volume if fill.liquidity is Liquidity.MAKER else self.taker_volume
        volume[key] += fill.qty * fill.price

    def apply_funding(self, payment: FundingPayment) -> None:
        key = (payment.venue, payment.account, payment.symbol, FUNDING_STRATEGY)
        self.states.setdefault(key, PositionState())
        self.funding[key] += payment.amount

    def account_qty(self, venue: str, account: str, symbol: str) -> Decimal:
        """The account's position in a symbol across strategies: what the venue should show."""
        return sum(
            (s.qty for (v, a, sym, _), s in self.states.items()
             if (v, a, sym) == (venue, account, symbol)),
            ZERO,
        )

    def views(self, marks: dict[tuple[str, str], Decimal]) -> list[PositionView]:
        rows = []
        for key in sorted(self.states):
            venue, account, symbol, strategy = key
            state = self.states[key]
            mark = marks.get(quote_key(venue, symbol))
            rows.append(PositionView(
                venue=venue, account=account, symbol=symbol, strategy=strategy,
                qty=state.qty, entry_price=state.entry_price, realized_pnl=state.realized_pnl,
                unrealized_pnl=ZERO if mark is None else state.unrealized_pnl(mark),
                fees=self.fees.get(key, ZERO), funding=self.funding.get(key, ZERO),
                maker_volume=self.maker_volume.get(key, ZERO),
                taker_volume=self.taker_volume.get(key, ZERO), mark_price=mark,
            ))
        return rows


class Positions(Actor):
    def __init__(self, journal: JournalService, topics: MarketTopics) -> None:
        self.journal = journal
        self.topics = topics
        self.book = PositionBook()
        self.marks: dict[tuple[str, str], Decimal] = {}
        self.applied = RecentIds()
        """Fill and funding keys applied: a queued copy of a journaled fill is not applied twice."""
        self.recent_by_strategy: dict[str, deque[str]] = {}

    async def on_start(self) -> None:
        journal = self.journal.journal
        for recorded in await journal.fills():
            if self.applied.add(fill_key(recorded.fill)):
                self._apply_fill(recorded.strategy, recorded.fill)
        for funding in await journal.funding():
            if self.applied.add(funding_key(funding.payment)):
                self.book.apply_funding(funding.payment)
        self.topics.books.subscribe(self.ref)

    async def on_order_filled(self, message: OrderFilled) -> None:
        if self.applied.add(fill_key(message.fill)):
            self._apply_fill(message.strategy, message.fill)

    def _apply_fill(self, strategy: str, fill: Fill) -> None:
        self.book.apply_fill(strategy, fill)
        recent = self.recent_by_strategy.get(strategy)
        if recent is None:
            recent = self.recent_by_strategy[strategy] = deque(maxlen=RECENT_FILLS_PER_STRATEGY)
        recent.append(fill_key(fill))

    async def on_funding_paid(self, message: FundingPaid) -> None:
        if self.applied.add(funding_key(message.payment)):
            self.book.apply_funding(message.payment)

    async def on_book_top(self, message: BookTop) -> None:
        self.marks[quote_key(message.venue, message.symbol)] = message.mid

    async def on_get_positions(
        self, message: GetPositions
    ) -> list[PositionView] | StrategyPositions:
        views = self.book.views(self.marks)
        if message.strategy is None:
            return views
        return StrategyPositions(
            positions=[v for v in views if v.strategy == message.strategy],
            recent_fill_keys=tuple(self.recent_by_strategy.get(message.strategy, ())),
        )
