"""Hedge: a maker leg on venue X, each of its fills hedged at market on venue Y.

A cycle has two legs. Leg 1 rests a post-only limit `offset_percent` from X's mid, on
`first_side`, until the strategy holds `quantity` there; leg 2, after `between_legs_sleep_s`,
closes it the same way from the other side. A maker order unfilled after `first_wait_s` is
cancelled and requoted at the current mid. Every maker fill, partial or whole, is hedged at
once by a market order for the same quantity on Y, so the position is always the pair
(+q on X, -q on Y) or flat. After a cycle the strategy sleeps `cycle_sleep_s`, and it starts no
cycle within `stop_before_funding_minutes` of either venue's next funding time as the venue
reports it (MarkPrice.next_funding_ns, compared with the venue's clock, not ours).

```
              cycle may start                    leg 1 filled
   IDLE ───────────────────────▶ QUOTING ──────────────────────▶ BETWEEN_LEGS
    ▲                           │  ▲   │ unfilled after                │ sleep over
    │ leg 2 filled              │  │   ▼ first_wait_s                 ▼
    └───────────────────────────┘  └─ REQUOTING                  QUOTING (leg 2)
   any state ── a fill leaves exposure ──▶ HEDGING ── hedged ──▶ back where it was
```

Give it dedicated accounts on both venues: reduce-only closes and risk's position checks are
per account.

The cycle's rules are pure functions in `_cycle` (no trio), the parameters and their checks
in `_params`, and the actor that observes, decides and acts in `_actor`.
"""

from ._actor import Hedge as Hedge
from ._actor import build_hedge as build_hedge
from ._cycle import CancelMaker as CancelMaker
from ._cycle import Correct as Correct
from ._cycle import Cycle as Cycle
from ._cycle import CycleLeg as CycleLeg
from ._cycle import FundingClock as FundingClock
from ._cycle import MakerOrder as MakerOrder
from ._cycle import Observation as Observation
from ._cycle import Phase as Phase
from ._cycle import Quote as Quote
from ._cycle import Role as Role
from ._cycle import decide as decide
from ._cycle import maker_price as maker_price
from ._cycle import may_start_cycle as may_start_cycle
from ._params import HedgeParams as HedgeParams

__all__ = [
    "CancelMaker",
    "Correct",
    "Cycle",
    "CycleLeg",
    "FundingClock",
    "Hedge",
    "HedgeParams",
    "MakerOrder",
    "Observation",
    "Phase",
    "Quote",
    "Role",
    "build_hedge",
    "decide",
    "maker_price",
    "may_start_cycle",
]
