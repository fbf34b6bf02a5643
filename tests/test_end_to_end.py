"""The paper configuration end to end: every strategy trades on both venues, and the journal,
our positions and the paper venues agree exactly afterwards."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import trio

from actors.messages import TradingState
from exchanges import Liquidity
from tests.trading import journal_store, paper_config, running_daemon

THIRTY_MINUTES_S = 30 * 60


async def test_paper_config_when_run_30_virtual_minutes_then_trades_and_all_agree(
    autojump_clock, steward_home
):
    async with running_daemon(steward_home) as daemon:
        await trio.sleep(THIRTY_MINUTES_S)
        status = await daemon.status()
        venues = daemon.assembly.venues

    # It traded on both venues, as maker and as taker where it reduced.
    assert status.trading is not None and status.trading.state is TradingState.ACTIVE
    fills_by_venue = Counter(fill.venue for v in venues.values() for fill in v.ledger.fills)
    assert fills_by_venue["paper-a"] > 20 and fills_by_venue["paper-b"] > 20
    assert {f.liquidity for v in venues.values() for f in v.ledger.fills} >= {Liquidity.MAKER}
    # Every actor ran the whole time: nothing crashed.
    assert all(a.restart_count == 0 for a in status.actors), [
        (a.path, a.last_error) for a in status.actors if a.restart_count
    ]
    # Our tracked positions agree with what the venues report, exactly.
    assert status.position_checks and all(check.agrees for check in status.position_checks)

    # The journal holds exactly the venues' fills: none lost, none counted twice.
    store = journal_store(steward_home)
    try:
        journaled = {(r.fill.venue, r.fill.fill_id): r.fill for r in store.fills()}
        at_venues = {(f.venue, f.fill_id): f for v in venues.values() for f in v.ledger.fills}
        assert journaled == at_venues
        # Every strategy traded, and each fill is attributed to the strategy that made it.
        by_strategy = Counter(r.strategy for r in store.fills())
        strategies = {s.name for s in paper_config().strategies}
        assert strategies <= set(by_strategy), by_strategy
        # Nothing is left resting: the strategies and gateways cancelled on stop.
        assert all(not v.ledger.open_orders(account)
                   for v in venues.values() for account in v.ledger.accounts)
        assert store.open_orders() == []
    finally:
        store.close()
    # Balances moved by exactly PnL, fees and funding (checked inside the venue's ledger).
    deposits = {(v.name, a): Decimal(amount) for v in paper_config().venues
                for a, amount in v.accounts.items() if not isinstance(amount, dict)}
    for venue in venues.values():
        for name, account in venue.ledger.accounts.items():
            realized = sum((p.realized_pnl for p in account.positions.values()), Decimal(0))
            assert account.balances["USDT"] == (
                deposits[(venue.name, name)] + realized - account.fees_paid
                + account.funding_received
            )
