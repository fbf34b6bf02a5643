"""The journal's storage layer: SQLite in WAL mode, written off the trio thread, group commit.

The journal actor is built on `open_journal`; nothing else should write the file. Code lives
in `_private` modules, reading bottom up: `_records` (what is stored), `_codec` (records to
rows and back, exact Decimals), `_schema` (connection settings, migrations), `_reader` and
`_store` (synchronous SQLite, for worker threads and tools), `_group_commit` (one writer
task, one fsync per batch) and `_journal` (the async front).
"""

from ._config import JournalConfig as JournalConfig
from ._exceptions import JournalClosedError as JournalClosedError
from ._exceptions import JournalError as JournalError
from ._exceptions import JournalSchemaError as JournalSchemaError
from ._exceptions import JournalWriteError as JournalWriteError
from ._group_commit import JournalStatistics as JournalStatistics
from ._journal import DEFAULT_JOURNAL_CONFIG as DEFAULT_JOURNAL_CONFIG
from ._journal import Journal as Journal
from ._journal import open_journal as open_journal
from ._reader import JournalReader as JournalReader
from ._records import RECORDS as RECORDS
from ._records import TRADING_STATES as TRADING_STATES
from ._records import EventRecorded as EventRecorded
from ._records import FillRecorded as FillRecorded
from ._records import FundingRecorded as FundingRecorded
from ._records import JournalRecord as JournalRecord
from ._records import OrderRecorded as OrderRecorded
from ._records import TradingStateRecorded as TradingStateRecorded
from ._schema import SCHEMA_VERSION as SCHEMA_VERSION
from ._schema import JournalSettings as JournalSettings
from ._store import BatchResult as BatchResult
from ._store import JournalStore as JournalStore

__all__ = [
    "DEFAULT_JOURNAL_CONFIG",
    "RECORDS",
    "SCHEMA_VERSION",
    "TRADING_STATES",
    "BatchResult",
    "EventRecorded",
    "FillRecorded",
    "FundingRecorded",
    "Journal",
    "JournalClosedError",
    "JournalConfig",
    "JournalError",
    "JournalReader",
    "JournalRecord",
    "JournalSchemaError",
    "JournalSettings",
    "JournalStatistics",
    "JournalStore",
    "JournalWriteError",
    "OrderRecorded",
    "TradingStateRecorded",
    "open_journal",
]
