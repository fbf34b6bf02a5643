"""`steward stats`: what trading did, per venue and account and per strategy, from the journal.

Reads the journal file and nothing else, so it works with the daemon running or stopped. The
module reads top to bottom: the report's structs, the pure fold that computes them (tested
directly), the read-only journal reader, then the rich tables.

How the numbers are made, and the traps:

- **The window** is `ts_venue_ns >= since_ns` (None: all time). Orders, volume, fees and
  funding count only inside it.
- **Realized PnL** replays every fill from the journal's first one, in venue-time order,
  through `exchanges.PositionState`, and counts only what is realized inside the window: a
  position opened before the window and closed inside it realizes inside it, at the true
  entry price. So the reader always loads all fills, whatever the window.
- **Positions are per (venue, account, symbol, strategy)**, as the positions actor keeps them,
  so `steward stats` and status agree and strategy rows add up to their account row. The
  venue nets strategies: if two strategies hold opposite positions in one symbol, the venue's
  own realized PnL (and risk's daily PnL) can differ from this sum.
- **Funding** is paid per account and symbol, not per strategy, so it appears only in account
  rows; an account's net PnL is its strategies' net PnL plus its funding.
- **Amounts are summed as one currency**: volume is quote notional (qty × price) and fees are
  taken as reported, whatever `fee_asset`, as the positions actor does.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Final

import msgspec
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from actors.journal import (
    DEFAULT_JOURNAL_CONFIG,
    SCHEMA_VERSION,
    FillRecorded,
    FundingRecorded,
    JournalReader,
    JournalSchemaError,
)
from exchanges import Fill, Liquidity, PositionState

ZERO: Final = Decimal(0)
BPS_PER_UNIT: Final = Decimal(10_000)
BPS_QUANTUM: Final = Decimal("0.01")  # finer than any fee tier; more digits would be noise

AccountKey = tuple[str, str]  # venue, account
StrategyKey = tuple[str, str, str]  # venue, account, strategy


# ---- the report --------------------------------------------------------------------------


class AccountStats(msgspec.Struct, frozen=True, kw_only=True):
    """One venue account inside the window: every strategy's fills plus the account's funding."""

    venue: str
    account: str
    fills: int
    maker_orders: int
    """Distinct orders (client ids) with a maker fill in the window. An order filled partly as
    maker and partly as taker counts in both `maker_orders` and `taker_orders`."""
    taker_orders: int
    maker_volume: Decimal
    """Quote notional (qty × price) of maker fills."""
    taker_volume: Decimal
    fees: Decimal
    """Paid (+) less rebates (-)."""
    funding: Decimal
    """Received (+) or paid (-)."""
    realized_pnl: Decimal
    """Gross: realized inside the window by positions replayed from the journal's start."""
    net_pnl: Decimal
    """realized_pnl - fees + funding."""
    pnl_bps: Decimal | None
    """net_pnl per 10,000 of volume (maker + taker), to 0.01; None without volume."""


class StrategyStats(msgspec.Struct, frozen=True, kw_only=True):
    """One strategy's share of one account: fields as in `AccountStats`, without funding."""

    venue: str
    account: str
    strategy: str
    fills: int
    maker_orders: int
    taker_orders: int
    maker_volume: Decimal
    taker_volume: Decimal
    fees: Decimal
    realized_pnl: Decimal
    net_pnl: Decimal
    """realized_pnl - fees: funding belongs to the account."""
    pnl_bps: Decimal | None


class StatsReport(msgspec.Struct, frozen=True, kw_only=True):
    since_ns: int | None
    """The window's start (venue clock); None for all time."""
    venue: str | None
    """The venue the report was limited to; None for all."""
    accounts: tuple[AccountStats, ...]
    """Accounts with fills or funding in the window, sorted by venue and account."""
    strategies: tuple[StrategyStats, ...]
    """Strategies with fills in the window, sorted by venue, account and strategy."""


# ---- the fold (pure) ---------------------------------------------------------------------


@dataclass
class _Tally:
    fills: int = 0
    maker_orders: set[str] = field(default_factory=set)
    taker_orders: set[str] = field(default_factory=set)
    maker_volume: Decimal = ZERO
    taker_volume: Decimal = ZERO
    fees: Decimal = ZERO
    realized_pnl: Decimal = ZERO

    def add(self, fill: Fill, realized: Decimal) -> None:
        self.fills += 1
        notional = fill.qty * fill.price
        if fill.liquidity is Liquidity.MAKER:
            self.maker_orders.add(fill.client_id)
            self.maker_volume += notional
        else:
            self.taker_orders.add(fill.client_id)
            self.taker_volume += notional
        self.fees += fill.fee
        self.realized_pnl += realized

    def bps(self, net_pnl: Decimal) -> Decimal | None:
        volume = self.maker_volume + self.taker_volume
        if volume == 0:
            return None
        return (net_pnl / volume * BPS_PER_UNIT).quantize(BPS_QUANTUM, rounding=ROUND_HALF_EVEN)


def compute_stats(
    fills: Iterable[FillRecorded],
    funding: Iterable[FundingRecorded],
    *,
    since_ns: int | None = None,
    venue: str | None = None,
) -> StatsReport:
    """The report for fills and funding at or after `since_ns`, for `venue` if given.

    `fills` must reach back to the journal's start even for a short window, or positions
    opened earlier realize at the wrong entry price (see the module docstring). Fills are
    replayed in `ts_venue_ns` order; ties keep the order given (the journal's).
    """
    positions: dict[tuple[str, str, str, str], PositionState] = {}
    by_account: dict[AccountKey, _Tally] = {}
    by_strategy: dict[StrategyKey, _Tally] = {}
    for recorded in sorted(fills, key=lambda r: r.fill.ts_venue_ns):
        fill = recorded.fill
        if venue is not None and fill.venue != venue:
            continue
        key = (fill.venue, fill.account, fill.symbol, recorded.strategy)
        state = positions.get(key)
        if state is None:
            state = positions[key] = PositionState()
        realized = state.apply_fill(fill.side, fill.qty, fill.price)
        if since_ns is not None and fill.ts_venue_ns < since_ns:
            continue  # replayed for the position, but before the window
        by_account.setdefault((fill.venue, fill.account), _Tally()).add(fill, realized)
        strategy_key = (fill.venue, fill.account, recorded.strategy)
        by_strategy.setdefault(strategy_key, _Tally()).add(fill, realized)

    paid: dict[AccountKey, Decimal] = {}
    for recorded_funding in funding:
        payment = recorded_funding.payment
        if venue is not None and payment.venue != venue:
            continue
        if since_ns is not None and payment.ts_venue_ns < since_ns:
            continue
        account_key = (payment.venue, payment.account)
        paid[account_key] = paid.get(account_key, ZERO) + payment.amount

    accounts = tuple(
        _account_stats(key, by_account.get(key, _Tally()), paid.get(key, ZERO))
        for key in sorted(by_account.keys() | paid.keys())
    )
    strategies = tuple(_strategy_stats(key, by_strategy[key]) for key in sorted(by_strategy))
    return StatsReport(since_ns=since_ns, venue=venue, accounts=accounts, strategies=strategies)


def _account_stats(key: AccountKey, tally: _Tally, funding: Decimal) -> AccountStats:
    net_pnl = tally.realized_pnl - tally.fees + funding
    return AccountStats(
        venue=key[0], account=key[1], fills=tally.fills,
        maker_orders=len(tally.maker_orders), taker_orders=len(tally.taker_orders),
        maker_volume=tally.maker_volume, taker_volume=tally.taker_volume, fees=tally.fees,
        funding=funding, realized_pnl=tally.realized_pnl, net_pnl=net_pnl,
        pnl_bps=tally.bps(net_pnl),
    )


def _strategy_stats(key: StrategyKey, tally: _Tally) -> StrategyStats:
    net_pnl = tally.realized_pnl - tally.fees
    return StrategyStats(
        venue=key[0], account=key[1], strategy=key[2], fills=tally.fills,
        maker_orders=len(tally.maker_orders), taker_orders=len(tally.taker_orders),
        maker_volume=tally.maker_volume, taker_volume=tally.taker_volume, fees=tally.fees,
        realized_pnl=tally.realized_pnl, net_pnl=net_pnl, pnl_bps=tally.bps(net_pnl),
    )


# ---- reading the journal -----------------------------------------------------------------


def read_stats(
    path: Path, *, since_ns: int | None = None, venue: str | None = None
) -> StatsReport:
    """`compute_stats` over the journal at `path`, opened read-only.

    Safe beside a running daemon: under WAL this reads the last commit without blocking the
    writer, and the connection cannot write (SQLite may create the -wal and -shm files if a
    stopped daemon removed them, as any reader of a WAL database does). All fills and funding
    are read in one transaction, so they come from the same commit.

    Raises FileNotFoundError if there is no file at `path`, JournalSchemaError if it is not a
    journal this code can read, and sqlite3.Error for trouble reading it.
    """
    if not path.exists():
        raise FileNotFoundError(f"no journal at {path}")
    conn = _connect_read_only(path)
    try:
        reader = JournalReader(conn)
        fills, funding = reader.snapshot(
            lambda r: (r.fills(venue=venue), r.funding(venue=venue))
        )
    finally:
        conn.close()
    return compute_stats(fills, funding, since_ns=since_ns, venue=venue)


def _connect_read_only(path: Path) -> sqlite3.Connection:
    # The journal package opens files only through JournalStore, which opens a writer and
    # migrates, so a reporting tool connects itself: mode=ro, and never creates the file.
    uri = f"{path.resolve().as_uri()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(DEFAULT_JOURNAL_CONFIG.busy_timeout_ms)}")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.OperationalError:
            raise  # locked or unreadable: not the file's fault
        except sqlite3.DatabaseError as exc:
            raise JournalSchemaError(f"{path} is not an SQLite database: {exc}") from exc
        if version == 0:
            raise JournalSchemaError(f"{path} is not a Steward journal (schema version 0)")
        if version > SCHEMA_VERSION:
            raise JournalSchemaError(
                f"{path} has journal schema version {version}; this code knows up to "
                f"{SCHEMA_VERSION}. Upgrade Steward."
            )
    except BaseException:
        conn.close()
        raise
    return conn


# ---- rendering ---------------------------------------------------------------------------


def render_stats(report: StatsReport) -> Group:
    """Two rich tables, orders and volume then PnL, under a line naming the window.

    Each account's row ("venue/account", bold) is followed by its strategies' rows, indented.
    Two narrow tables rather than one wide one, so that they fit 80 columns (rich's width
    when stdout is not a terminal) without truncating a number.
    """
    if report.since_ns is None:
        window = "all time"
    else:
        start = datetime.fromtimestamp(report.since_ns / 1e9, tz=UTC)
        window = f"since {start:%Y-%m-%d %H:%M:%S} UTC"
    venue = "" if report.venue is None else f", venue {report.venue}"
    header = Text.assemble(("steward stats", "bold"), f": {window}{venue}")
    if not report.accounts:
        return Group(header, Text("no fills or funding in the window", "dim"))

    by_account: dict[AccountKey, list[StrategyStats]] = {}
    for s in report.strategies:
        by_account.setdefault((s.venue, s.account), []).append(s)
    volume = _table("orders and volume", "fills", "maker\norders", "taker\norders",
                    "maker\nvolume", "taker\nvolume")
    pnl = _table("PnL (funding is per account)", "fees", "funding", "realized", "net", "bps")
    for a in report.accounts:
        label = Text(f"{a.venue}/{a.account}", "bold")
        volume.add_row(label, *_activity(a))
        pnl.add_row(label, _money(a.fees), _money(a.funding), _money(a.realized_pnl),
                    _signed(a.net_pnl), _bps(a.pnl_bps))
        for s in by_account.get((a.venue, a.account), []):
            label = Text(f"  {s.strategy}")
            volume.add_row(label, *_activity(s))
            pnl.add_row(label, _money(s.fees), "-", _money(s.realized_pnl),
                        _signed(s.net_pnl), _bps(s.pnl_bps))
    return Group(header, volume, pnl)


def _table(title: str, *numeric: str) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("account\n  strategy")
    for column in numeric:
        table.add_column(column, justify="right", no_wrap=True)  # never truncate a number
    return table


def _activity(row: AccountStats | StrategyStats) -> tuple[str, ...]:
    return (str(row.fills), str(row.maker_orders), str(row.taker_orders),
            f"{row.maker_volume:,.2f}", f"{row.taker_volume:,.2f}")


def _money(value: Decimal) -> str:
    return f"{value:,.4f}"  # fees on small fills are fractions of a cent


def _signed(value: Decimal) -> Text:
    return Text(_money(value), "green" if value > 0 else "red" if value < 0 else "")


def _bps(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:.2f}"
