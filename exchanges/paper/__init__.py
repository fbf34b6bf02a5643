"""The paper venue: a simulated exchange that runs on the trio clock and outlives the daemon."""

from ._engine import Book as Book
from ._engine import FeeSchedule as FeeSchedule
from ._engine import Level as Level
from ._engine import MatchingEngine as MatchingEngine
from ._ledger import Deposit as Deposit
from ._ledger import Effect as Effect
from ._ledger import Ledger as Ledger
from ._market import BasisSpec as BasisSpec
from ._market import SymbolSpec as SymbolSpec
from ._market import SyntheticMarket as SyntheticMarket
from ._venue import PaperAccount as PaperAccount
from ._venue import PaperVenue as PaperVenue
from ._venue import PaperVenueConfig as PaperVenueConfig
from ._venue import PaperWorld as PaperWorld

__all__ = [
    "BasisSpec",
    "Book",
    "Deposit",
    "Effect",
    "FeeSchedule",
    "Ledger",
    "Level",
    "MatchingEngine",
    "PaperAccount",
    "PaperVenue",
    "PaperVenueConfig",
    "PaperWorld",
    "SymbolSpec",
    "SyntheticMarket",
]
