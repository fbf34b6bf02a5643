"""The paper venue's accounts as a fold over effects.

Every change to an account is an *effect* (a deposit, an order update, a fill, a funding
payment). The engine computes an effect, applies it here, and the venue appends it to the
state file. Replaying the file through the same `apply` rebuilds the same accounts, so a
daemon killed at any point finds the venue exactly as the venue last told it.

Positions use the average-price accounting of exchanges._accounting, the same our positions
actor uses, so venue and daemon agree to the last digit. The quote balance moves by realized
PnL, fees and funding, nothing else, so it is conserved exactly (property-tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from .._accounting import ZERO, PositionState
from .._models import Balance, Fill, FundingPayment, OrderStatus, Position, VenueOrder


class Deposit(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Money credited to an account (the paper venue's starting balance)."""

    account: str
    asset: str
    amount: Decimal
    ts_venue_ns: int


Effect = Deposit | VenueOrder | Fill | FundingPayment


@dataclass
class AccountState:
    name: str
    quote_asset: str
    balances: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[str, PositionState] = field(default_factory=dict)
    open_orders: dict[str, VenueOrder] = field(default_factory=dict)
    """By client id: only orders that are not terminal."""
    client_ids: set[str] = field(default_factory=set)
    """Every client id the account ever used: a repeat is refused, open or not."""
    fees_paid: Decimal = ZERO
    funding_received: Decimal = ZERO

    def position(self, symbol: str) -> PositionState:
        state = self.positions.get(symbol)
        if state is None:
            state = self.positions[symbol] = PositionState()
        return state


class Ledger:
    """All accounts of one paper venue."""

    def __init__(
        self, venue: str, quote_asset: str, spot_assets: dict[str, tuple[str, str]] | None = None
    ) -> None:
        self.venue = venue
        self.quote_asset = quote_asset
        self.spot_assets = dict(spot_assets or {})
        """Spot symbol → (base, quote): their fills move both balances instead of margin."""
        self.accounts: dict[str, AccountState] = {}
        self.fills: list[Fill] = []
        self.funding: list[FundingPayment] = []
        self.last_ts_venue_ns = 0

    def account(self, name: str) -> AccountState:
        state = self.accounts.get(name)
        if state is None:
            state = self.accounts[name] = AccountState(name, self.quote_asset)
        return state

    def apply(self, effect: Effect) -> None:
        """The only way account state changes, live and on replay."""
        self.last_ts_venue_ns = max(self.last_ts_venue_ns, effect.ts_venue_ns)
        account = self.account(effect.account)
        if isinstance(effect, VenueOrder):
            account.client_ids.add(effect.client_id)
            if effect.status.is_terminal:
                account.open_orders.pop(effect.client_id, None)
            else:
                account.open_orders[effect.client_id] = effect
        elif isinstance(effect, Fill):
            realized = account.position(effect.symbol).apply_fill(
                effect.side, effect.qty, effect.price
            )
            spot = self.spot_assets.get(effect.symbol)
            if spot is None:  # futures: margin moves by realized PnL
                self._credit(account, self.quote_asset, realized)
            else:  # spot: the trade itself moves both balances
                base, quote = spot
                self._credit(account, base, effect.qty * effect.side.sign)
                self._credit(account, quote, -effect.qty * effect.price * effect.side.sign)
            self._credit(account, effect.fee_asset, -effect.fee)
            account.fees_paid += effect.fee
            self.fills.append(effect)
        elif isinstance(effect, FundingPayment):
            self._credit(account, self.quote_asset, effect.amount)
            account.funding_received += effect.amount
            self.funding.append(effect)
        else:
            self._credit(account, effect.asset, effect.amount)

    @staticmethod
    def _credit(account: AccountState, asset: str, amount: Decimal) -> None:
        account.balances[asset] = account.balances.get(asset, ZERO) + amount

    # ---- views ---------------------------------------------------------------------------

    def positions(self, account: str) -> list[Position]:
        state = self.account(account)
        return [
            Position(venue=self.venue, account=account, symbol=symbol, qty=p.qty,
                     entry_price=p.entry_price)
            for symbol, p in sorted(state.positions.items())
            if p.qty != 0 and symbol not in self.spot_assets  # spot holds balances, not positions
        ]

    def balances(self, account: str, locked: Decimal = ZERO) -> list[Balance]:
        state = self.account(account)
        return [
            Balance(asset=asset, total=total,
                    available=total - (locked if asset == self.quote_asset else ZERO))
            for asset, total in sorted(state.balances.items())
        ]

    def open_orders(self, account: str, symbol: str | None = None) -> list[VenueOrder]:
        orders = self.account(account).open_orders.values()
        return [o for o in orders if symbol is None or o.symbol == symbol]

    def is_open(self, account: str, client_id: str) -> bool:
        return client_id in self.account(account).open_orders

    def used(self, account: str, client_id: str) -> bool:
        return client_id in self.account(account).client_ids

    @staticmethod
    def is_live(order: VenueOrder) -> bool:
        return order.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)
