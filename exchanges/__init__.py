"""Venue adapters and the venue interface. Knows nothing of actors (DESIGN §1).

Public names live here; code lives in `_private` modules and venue subpackages.
"""

from ._accounting import PositionState as PositionState
from ._exceptions import OrderOutcomeUnknownError as OrderOutcomeUnknownError
from ._exceptions import RejectReason as RejectReason
from ._exceptions import VenueAuthError as VenueAuthError
from ._exceptions import VenueError as VenueError
from ._exceptions import VenueRejectedError as VenueRejectedError
from ._exceptions import VenueTransportError as VenueTransportError
from ._local_book import LocalBook as LocalBook
from ._local_book import SyncResult as SyncResult
from ._models import Balance as Balance
from ._models import BookTop as BookTop
from ._models import Fill as Fill
from ._models import FundingPayment as FundingPayment
from ._models import Instrument as Instrument
from ._models import Liquidity as Liquidity
from ._models import MarketEvent as MarketEvent
from ._models import MarkPrice as MarkPrice
from ._models import OrderRequest as OrderRequest
from ._models import OrderStatus as OrderStatus
from ._models import OrderType as OrderType
from ._models import Position as Position
from ._models import Side as Side
from ._models import TimeInForce as TimeInForce
from ._models import Trade as Trade
from ._models import UserEvent as UserEvent
from ._models import VenueOrder as VenueOrder
from ._rate_limits import RateLimitedError as RateLimitedError
from ._stream_errors import MalformedMessageError as MalformedMessageError
from ._venue import AccountClient as AccountClient
from ._venue import MarketDataClient as MarketDataClient

__all__ = [
    "AccountClient",
    "Balance",
    "BookTop",
    "Fill",
    "FundingPayment",
    "Instrument",
    "Liquidity",
    "LocalBook",
    "MalformedMessageError",
    "MarkPrice",
    "MarketDataClient",
    "MarketEvent",
    "OrderOutcomeUnknownError",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "Position",
    "PositionState",
    "RateLimitedError",
    "RejectReason",
    "Side",
    "SyncResult",
    "TimeInForce",
    "Trade",
    "UserEvent",
    "VenueAuthError",
    "VenueError",
    "VenueOrder",
    "VenueRejectedError",
    "VenueTransportError",
]
