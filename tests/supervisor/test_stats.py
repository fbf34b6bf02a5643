"""`steward stats`: the pure fold with hand-computed numbers, then the command on a real journal.

Rules for this module: expected numbers are worked out by hand in comments, never by calling
the code under test. The journal tests use real files under `tmp_path` and the real clock
(the journal works in worker threads), bounded by `trio.fail_after(BOUND_S)`; the command runs
as a real subprocess, as an operator runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import trio

from actors.journal import FillRecorded, FundingRecorded, JournalStore, open_journal
from exchanges import Fill, FundingPayment, Liquidity, Side
from supervisor._stats import AccountStats, StrategyStats, compute_stats
from supervisor.cli import main

STEWARD = [sys.executable, "-m", "supervisor.cli"]
BOUND_S = 30  # two interpreter start-ups, on a slow CI machine
T0 = 1_760_000_000_000_000_000
HOUR_NS = 3_600_000_000_000
MAKER, TAKER = Liquidity.MAKER, Liquidity.TAKER
BUY, SELL = Side.BUY, Side.SELL

_fill_ids = iter(range(1, 1_000_000))


def fill(
    side: Side, qty: str, price: str, *, fee: str = "0", liquidity: Liquidity = MAKER,
    ts_ns: int = T0, client_id: str | None = None, venue: str = "paper-a",
    account: str = "mm", symbol: str = "BTC-PERP", strategy: str = "mm",
) -> FillRecorded:
    n = next(_fill_ids)
    return FillRecorded(strategy=strategy, fill=Fill(
        venue=venue, account=account, fill_id=f"F{n}", client_id=client_id or f"c{n}",
        venue_order_id=f"v{n}", symbol=symbol, side=side, qty=Decimal(qty),
        price=Decimal(price), fee=Decimal(fee), fee_asset="USDT", liquidity=liquidity,
        ts_venue_ns=ts_ns,
    ))


def funding(amount: str, *, ts_ns: int = T0, venue: str = "paper-a", account: str = "mm",
            symbol: str = "BTC-PERP") -> FundingRecorded:
    return FundingRecorded(payment=FundingPayment(
        venue=venue, account=account, symbol=symbol, amount=Decimal(amount),
        rate=Decimal("0.0001"), position_qty=Decimal(1), mark_price=Decimal(100),
        ts_venue_ns=ts_ns,
    ))


# ---- the fold ----------------------------------------------------------------------------


def test_compute_when_maker_and_taker_fills_then_counts_orders_volume_and_fees():
    # Arrange: c1 rests and fills twice as maker; c2 takes; c3 takes part, then rests and
    # fills the rest as maker, so it counts as a maker order and as a taker order.
    fills = [
        fill(BUY, "1", "100", fee="-0.01", client_id="c1", ts_ns=T0 + 1),
        fill(BUY, "1", "100", fee="-0.01", client_id="c1", ts_ns=T0 + 2),
        fill(SELL, "0.5", "110", fee="0.022", liquidity=TAKER, client_id="c2", ts_ns=T0 + 3),
        fill(SELL, "0.5", "108", fee="0.0216", liquidity=TAKER, client_id="c3", ts_ns=T0 + 4),
        fill(SELL, "1", "108", fee="-0.0108", client_id="c3", ts_ns=T0 + 5),
    ]
    # Act
    report = compute_stats(fills, [])
    # Assert
    # maker volume 100 + 100 + 108 = 308; taker 55 + 54 = 109
    # fees -0.01 - 0.01 + 0.022 + 0.0216 - 0.0108 = 0.0128
    # long 2 @ 100; sells realize 0.5×10 + 0.5×8 + 1×8 = 17; net 17 - 0.0128 = 16.9872
    # bps 16.9872 / 417 × 10,000 = 407.3669… → 407.37
    (account,) = report.accounts
    assert account == AccountStats(
        venue="paper-a", account="mm", fills=5, maker_orders=2, taker_orders=2,
        maker_volume=Decimal(308), taker_volume=Decimal(109), fees=Decimal("0.0128"),
        funding=Decimal(0), realized_pnl=Decimal(17), net_pnl=Decimal("16.9872"),
        pnl_bps=Decimal("407.37"),
    )
    assert report.since_ns is None and report.venue is None


def test_compute_when_position_flips_through_zero_then_realizes_against_average_then_flip_price():
    # Arrange: long 1 @ 100 and 1 @ 102 (entry 101); sell 3 @ 110 closes 2 and opens a short
    # of 1 @ 110; buy 1 @ 105 closes the short.
    fills = [
        fill(BUY, "1", "100", ts_ns=T0 + 1),
        fill(BUY, "1", "102", ts_ns=T0 + 2),
        fill(SELL, "3", "110", ts_ns=T0 + 3),
        fill(BUY, "1", "105", ts_ns=T0 + 4),
    ]
    # Act: given newest first, the fold still replays in venue-time order
    report = compute_stats(list(reversed(fills)), [])
    # Assert: 2 × (110 - 101) = 18, then 1 × (110 - 105) = 5
    (account,) = report.accounts
    assert account.realized_pnl == Decimal(23)
    assert account.maker_volume == Decimal(100 + 102 + 330 + 105)


def test_compute_when_funding_then_net_pnl_and_bps_include_it_for_the_account_only():
    # Arrange
    fills = [
        fill(BUY, "2", "50", fee="-0.01", ts_ns=T0 + 1),
        fill(SELL, "2", "51", fee="0.0408", liquidity=TAKER, ts_ns=T0 + 2),
    ]
    payments = [funding("-0.5", ts_ns=T0 + 3), funding("0.2", ts_ns=T0 + 4)]
    # Act
    report = compute_stats(fills, payments)
    # Assert: realized 2 × 1 = 2; fees 0.0308; funding -0.3; volume 100 + 102 = 202
    (account,) = report.accounts
    assert account.funding == Decimal("-0.3")
    assert account.net_pnl == Decimal("1.6692")  # 2 - 0.0308 - 0.3
    assert account.pnl_bps == Decimal("82.63")  # 1.6692 / 202 × 10,000 = 82.6336…
    (strategy,) = report.strategies
    assert strategy.net_pnl == Decimal("1.9692")  # 2 - 0.0308: funding stays with the account
    assert strategy.pnl_bps == Decimal("97.49")  # 1.9692 / 202 × 10,000 = 97.4851…


def test_compute_when_only_funding_then_account_row_without_bps_and_no_strategy_rows():
    # Act
    report = compute_stats([], [funding("0.25")])
    # Assert
    (account,) = report.accounts
    assert account.fills == 0 and account.funding == Decimal("0.25")
    assert account.net_pnl == Decimal("0.25")
    assert account.pnl_bps is None  # no volume: a ratio to nothing is not zero
    assert report.strategies == ()


def test_compute_when_position_opened_before_window_then_close_realizes_inside_it():
    # Arrange: the window starts an hour before T0
    since_ns = T0 - HOUR_NS
    fills = [
        # opened and closed before the window: realizes 20, outside it
        fill(BUY, "1", "100", ts_ns=T0 - 3 * HOUR_NS, symbol="ETH-PERP"),
        fill(SELL, "1", "120", ts_ns=T0 - 3 * HOUR_NS + 1, symbol="ETH-PERP"),
        # opened before the window at 100, closed at its first instant at 110
        fill(BUY, "1", "100", fee="0.5", ts_ns=T0 - 2 * HOUR_NS),
        fill(SELL, "1", "110", fee="0.011", liquidity=TAKER, ts_ns=since_ns),
        # another account that traded only before the window
        fill(BUY, "1", "100", ts_ns=T0 - 2 * HOUR_NS, account="other"),
    ]
    payments = [funding("-1", ts_ns=since_ns - 1), funding("0.1", ts_ns=since_ns + 1)]
    # Act
    report = compute_stats(fills, payments, since_ns=since_ns)
    # Assert: only the closing fill counts, and it realizes against the entry of 100
    (account,) = report.accounts
    assert account == AccountStats(
        venue="paper-a", account="mm", fills=1, maker_orders=0, taker_orders=1,
        maker_volume=Decimal(0), taker_volume=Decimal(110), fees=Decimal("0.011"),
        funding=Decimal("0.1"), realized_pnl=Decimal(10), net_pnl=Decimal("10.089"),
        pnl_bps=Decimal("917.18"),  # 10.089 / 110 × 10,000 = 917.1818…
    )
    assert report.since_ns == since_ns


def test_compute_when_venue_given_then_only_that_venue():
    # Arrange
    fills = [
        fill(BUY, "1", "100", venue="paper-a"),
        fill(BUY, "2", "100", venue="paper-b", ts_ns=T0 + 1),
        fill(SELL, "2", "101", venue="paper-b", ts_ns=T0 + 2),
    ]
    payments = [funding("1", venue="paper-a"), funding("-0.5", venue="paper-b")]
    # Act
    report = compute_stats(fills, payments, venue="paper-b")
    # Assert
    (account,) = report.accounts
    assert (account.venue, account.fills, account.realized_pnl) == ("paper-b", 2, Decimal(2))
    assert account.funding == Decimal("-0.5")
    assert [s.venue for s in report.strategies] == ["paper-b"]
    assert report.venue == "paper-b"


def test_compute_when_two_strategies_share_a_symbol_then_each_keeps_its_own_position():
    # Arrange: mm goes long 1 @ 100 while arb goes short 1 @ 102, on the same account and
    # symbol. Netted at the account this would be a close realizing 2; per strategy it is two
    # open positions, as the positions actor keeps them.
    fills = [
        fill(BUY, "1", "100", strategy="mm", client_id="m1", ts_ns=T0 + 1),
        fill(SELL, "1", "102", strategy="arb", client_id="a1", liquidity=TAKER,
             fee="0.05", ts_ns=T0 + 2),
        fill(SELL, "1", "101", strategy="mm", client_id="m2", fee="-0.01", ts_ns=T0 + 3),
        fill(BUY, "1", "99", strategy="arb", client_id="a2", liquidity=TAKER,
             fee="0.05", ts_ns=T0 + 4),
    ]
    # Act
    report = compute_stats(fills, [funding("0.3")])
    # Assert: mm realizes 101 - 100 = 1, arb 102 - 99 = 3
    assert report.strategies == (
        StrategyStats(
            venue="paper-a", account="mm", strategy="arb", fills=2, maker_orders=0,
            taker_orders=2, maker_volume=Decimal(0), taker_volume=Decimal(201),
            fees=Decimal("0.1"), realized_pnl=Decimal(3), net_pnl=Decimal("2.9"),
            pnl_bps=Decimal("144.28"),  # 2.9 / 201 × 10,000 = 144.2786…
        ),
        StrategyStats(
            venue="paper-a", account="mm", strategy="mm", fills=2, maker_orders=2,
            taker_orders=0, maker_volume=Decimal(201), taker_volume=Decimal(0),
            fees=Decimal("-0.01"), realized_pnl=Decimal(1), net_pnl=Decimal("1.01"),
            pnl_bps=Decimal("50.25"),  # 1.01 / 201 × 10,000 = 50.2487…
        ),
    )
    # The account row is the strategies' sum, plus the account's funding.
    (account,) = report.accounts
    assert (account.fills, account.maker_orders, account.taker_orders) == (4, 2, 2)
    assert account.realized_pnl == Decimal(4) and account.fees == Decimal("0.09")
    assert account.net_pnl == Decimal("4.21")  # 2.9 + 1.01 + 0.3


# ---- the command -------------------------------------------------------------------------


async def test_stats_json_when_daemon_journal_open_then_reads_window_and_venue(tmp_path: Path):
    # Arrange: a journal held open by its writer, as a running daemon holds it
    path = tmp_path / "journal.sqlite"
    now_ns = time.time_ns()
    records = [
        fill(BUY, "1", "100", fee="-0.01", client_id="o1", ts_ns=now_ns - 2 * HOUR_NS),
        fill(SELL, "1", "110", fee="0.022", liquidity=TAKER, client_id="o2",
             ts_ns=now_ns - HOUR_NS // 6),
        fill(BUY, "3", "50", venue="paper-b", ts_ns=now_ns - HOUR_NS // 6),
        funding("-0.25", ts_ns=now_ns - HOUR_NS // 12),
    ]
    with trio.fail_after(BOUND_S):
        async with open_journal(path) as journal:
            await journal.record_many(records)
            # Act
            windowed = await trio.run_process(
                [*STEWARD, "stats", "--json", "--journal", str(path), "--hours", "1",
                 "--venue", "paper-a"],
                capture_stdout=True, capture_stderr=True, check=False,
            )
        everything = await trio.run_process(
            [*STEWARD, "stats", "--json", "--journal", str(path)],
            capture_stdout=True, capture_stderr=True, check=False,
        )
    # Assert: the sell closes the long opened before the window: realized 10,
    # net 10 - 0.022 - 0.25 = 9.728 on a volume of 110: 884.3636… bps
    assert windowed.returncode == 0, windowed.stderr
    report = json.loads(windowed.stdout)
    assert report["venue"] == "paper-a" and report["since_ns"] > now_ns - 2 * HOUR_NS
    (account,) = report["accounts"]
    assert (account["venue"], account["account"], account["fills"]) == ("paper-a", "mm", 1)
    assert (account["maker_orders"], account["taker_orders"]) == (0, 1)
    assert {k: Decimal(account[k]) for k in (
        "maker_volume", "taker_volume", "fees", "funding", "realized_pnl", "net_pnl",
        "pnl_bps")} == {
        "maker_volume": 0, "taker_volume": 110, "fees": Decimal("0.022"),
        "funding": Decimal("-0.25"), "realized_pnl": 10, "net_pnl": Decimal("9.728"),
        "pnl_bps": Decimal("884.36"),
    }
    assert isinstance(account["net_pnl"], str)  # decimals travel as strings
    (strategy,) = report["strategies"]
    assert strategy["strategy"] == "mm" and Decimal(strategy["net_pnl"]) == Decimal("9.978")
    # All time, every venue, after the writer closed: both accounts, every fill.
    assert everything.returncode == 0, everything.stderr
    accounts = json.loads(everything.stdout)["accounts"]
    assert [(a["venue"], a["fills"]) for a in accounts] == [("paper-a", 2), ("paper-b", 1)]


def test_stats_when_journal_missing_then_one_line_naming_path_and_exit_2(steward_home: Path):
    # Act: the default path, under STEWARD_HOME (set for every test by conftest)
    result = subprocess.run([*STEWARD, "stats"], capture_output=True, text=True, timeout=BOUND_S)
    # Assert
    expected = steward_home / "journal.sqlite"
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"no journal at {expected}" in result.stderr
    assert not expected.exists()  # read-only: never created


def test_stats_when_file_is_not_a_journal_then_one_line_and_exit_2(tmp_path: Path, capsys):
    # Arrange
    path = tmp_path / "notes.sqlite"
    path.write_text("not a database, only words " * 100)
    # Act
    code = main(["stats", "--journal", str(path)])
    # Assert
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "is not an SQLite database" in err


def test_stats_when_hours_not_positive_then_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["stats", "--hours", "0"])
    assert exited.value.code == 2
    assert "hours must be positive" in capsys.readouterr().err


def test_stats_tables_when_fills_then_accounts_with_their_strategies_untruncated(
    tmp_path: Path, capsys
):
    # Arrange
    path = tmp_path / "journal.sqlite"
    store = JournalStore(path)
    try:
        store.write_batch([
            fill(BUY, "10", "123456.5", fee="-123.4565", strategy="mm", ts_ns=T0 + 1),
            fill(SELL, "10", "123457.5", fee="617.2875", liquidity=TAKER, strategy="grid",
                 ts_ns=T0 + 2),
        ])
    finally:
        store.close()
    # Act: 80 columns, rich's width when stdout is not a terminal
    code = main(["stats", "--journal", str(path)])
    # Assert
    out = capsys.readouterr().out
    assert code == 0
    assert "all time" in out and "orders and volume" in out and "PnL" in out
    assert "paper-a/mm" in out and "  grid" in out and "  mm" in out
    assert "1,234,565.00" in out and "1,234,575.00" in out and "493.8310" in out
    assert "…" not in out
