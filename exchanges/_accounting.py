"""Average-price position accounting, shared by the paper venue and the positions actor.

Adding to a position moves the entry price to the size-weighted average; reducing realizes
(fill - entry) × closed qty; flipping through zero opens the remainder at the fill price.
The average is the one division, so the entry price is kept to ENTRY_PRICE_QUANTUM: every
other amount is an exact product or sum of decimals, and no total depends on the order it was
added up in. One implementation on both sides means the daemon and the paper venue agree to
the last digit.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from ._models import Side

ZERO = Decimal(0)
ENTRY_PRICE_QUANTUM = Decimal("1e-10")


@dataclass
class PositionState:
    qty: Decimal = ZERO
    entry_price: Decimal = ZERO
    realized_pnl: Decimal = ZERO

    def apply_fill(self, side: Side, qty: Decimal, price: Decimal) -> Decimal:
        """Update for one fill; returns the PnL it realized."""
        signed = qty if side is Side.BUY else -qty
        current = self.qty
        if current == 0 or (current > 0) == (signed > 0):
            new_qty = current + signed
            average = (abs(current) * self.entry_price + qty * price) / abs(new_qty)
            self.entry_price = average.quantize(ENTRY_PRICE_QUANTUM, rounding=ROUND_HALF_EVEN)
            self.qty = new_qty
            return ZERO
        closed = min(qty, abs(current))
        direction = 1 if current > 0 else -1
        realized = closed * (price - self.entry_price) * direction
        new_qty = current + signed
        if new_qty == 0:
            self.entry_price = ZERO
        elif (new_qty > 0) != (current > 0):
            self.entry_price = price  # flipped: the remainder opened at this fill
        self.qty = new_qty
        self.realized_pnl += realized
        return realized

    def unrealized_pnl(self, mark: Decimal) -> Decimal:
        return self.qty * (mark - self.entry_price)
