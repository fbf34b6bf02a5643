"""Spread arbitrage: buy where it is cheap, sell where it is rich, get out when they meet.

Two venues quote the same asset, and their prices drift apart and back (funding, flows, one
venue's lag). When the executable spread (the rich venue's bid against the cheap venue's ask,
minus both legs' taker fees) reaches `open_threshold_bps`, the strategy buys `trade_amount` on
the cheap venue and sells it on the rich one. The pair is market neutral and earns what the gap
gives back. It is closed, both legs reversed, when the gap measured the way a close trades it
(the rich venue's ask against the cheap venue's bid, plus both closing fees) is down to
`close_threshold_bps`, or after `max_hold_s` whatever the gap. A round trip so earns at least
`open_threshold_bps - close_threshold_bps` net of all four fees, before slippage: that is why
the close threshold must sit below the open threshold.

Why each guard:
- Prices older than `max_price_age_s` are not acted on (no open, no close): a feed that stalls
  on one venue shows a spread that is not there, exactly like an opportunity. Unwinds are not
  decisions on prices and do not wait for fresh ones.
- Entry legs are IOC limits at the touch plus at most `max_slippage_bps`, so a leg whose market
  moved fails instead of filling anywhere. Exits (closes and unwinds) are reduce-only market
  orders: getting out matters more than the price, and reduce-only can never open exposure.
- Both entry legs go to risk back to back, neither waiting for the other's outcome: waiting
  would leave the first leg naked for a round trip. The price is that one leg can fail alone.
  Whatever one leg filled beyond the other is unwound at once, so a failed leg ends flat and a
  partial fill ends hedged on the smaller size. Unwinds and closes that fall short (risk denied
  them, the venue refused) are retried with backoff until the legs are where they should be.
- At most `max_positions` arbitrages at once, opens at least `min_trade_interval_s` apart, and
  never both directions at once: the venue nets them, and one side's reduce-only closes would
  then be refused.

The pure part is in `_decision`, with no trio: `decide` is a function of both books, the clock,
the open positions and the parameters, tested at its boundaries and benchmarked alone. The actor
(`SpreadArb`, in `_actor`) is plumbing: books in, orders to risk, order ends and fills back into
the positions. A restarted instance adopts the position it finds, and the fills of orders its
predecessor had in flight (hedged part kept, the rest unwound), and opens nothing for
`START_QUIET_S` so those fills are in first. The parameters and their checks are in `_params`.

Receives BookTop, ArbTick, UpdateParams and the order events; sends SubmitOrder to risk.
"""

from ._actor import START_QUIET_S as START_QUIET_S
from ._actor import SpreadArb as SpreadArb
from ._actor import build_spread_arb as build_spread_arb
from ._decision import ArbPosition as ArbPosition
from ._decision import ArbState as ArbState
from ._decision import Close as Close
from ._decision import CloseReason as CloseReason
from ._decision import Decision as Decision
from ._decision import Direction as Direction
from ._decision import Hold as Hold
from ._decision import Phase as Phase
from ._decision import SeenBook as SeenBook
from ._decision import close_spread_bps as close_spread_bps
from ._decision import decide as decide
from ._decision import hedge as hedge
from ._decision import is_flat as is_flat
from ._decision import open_spread_bps as open_spread_bps
from ._decision import repairs as repairs
from ._params import SpreadArbParams as SpreadArbParams

__all__ = [
    "START_QUIET_S",
    "ArbPosition",
    "ArbState",
    "Close",
    "CloseReason",
    "Decision",
    "Direction",
    "Hold",
    "Phase",
    "SeenBook",
    "SpreadArb",
    "SpreadArbParams",
    "build_spread_arb",
    "close_spread_bps",
    "decide",
    "hedge",
    "is_flat",
    "open_spread_bps",
    "repairs",
]
