"""Risk: pre-trade checks with reason codes, trading state, daily loss halt."""

from ._actor import Risk as Risk
from ._checks import Denial as Denial
from ._checks import RestingOrder as RestingOrder
from ._checks import RiskView as RiskView
from ._checks import TokenBucket as TokenBucket
from ._checks import check_order as check_order
from ._config import AccountLimits as AccountLimits
from ._config import HedgeGroup as HedgeGroup
from ._config import RiskConfig as RiskConfig

__all__ = [
    "AccountLimits",
    "Denial",
    "HedgeGroup",
    "RestingOrder",
    "Risk",
    "RiskConfig",
    "RiskView",
    "TokenBucket",
    "check_order",
]
