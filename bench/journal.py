"""`journal`: fills journaled durably per second with group commit, against one fsync per fill.

Both sides use the same file and settings (WAL, `synchronous=FULL`: committed means on disk),
in a temporary directory under the system temp dir, on the real clock.

Group commit: PRODUCERS tasks each record FILLS_PER_PRODUCER distinct fills, one
`await journal.record(...)` at a time, as fast as they can; fills/s is all fills over the
wall time, and every call's latency is kept (`batch_p50_us`, `batch_p99_us`: how long a
caller waits for durability under that load). Floor: one `write_batch` per fill,
sequentially, in a worker thread, through the same store: what the disk allows when every
fill pays its own fsync. Rounds alternate the two so machine noise falls on both alike;
rates are medians over the rounds, latency percentiles pool every call.
"""

from __future__ import annotations

import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import trio

from actors.journal import FillRecorded, JournalStore, open_journal
from exchanges import Fill, Liquidity, Side

from ._stats import percentile_us

ROUNDS: Final = 3
PRODUCERS: Final = 20
FILLS_PER_PRODUCER: Final = 2_500
FLOOR_FILLS_PER_ROUND: Final = 1_000
TARGET_FILLS_PER_S: Final = 20_000


def _fill(producer: int, n: int, prefix: str) -> FillRecorded:
    """A realistic maker fill: tick-sized price, step-sized qty, a rebate. Ids and times grow
    with `n`, as venues' trade ids do."""
    return FillRecorded(
        fill=Fill(
            venue="paper",
            account="main",
            fill_id=f"{prefix}{n:012d}",
            client_id=f"mm-{producer}-{n}",
            venue_order_id=f"{9_000_000_000 + n}",
            symbol="BTCUSDT",
            side=Side.BUY if n % 2 == 0 else Side.SELL,
            qty=Decimal("0.003"),
            price=Decimal("64123.40") + Decimal(n % 100) / 10,
            fee=Decimal("-0.0384740"),
            fee_asset="USDT",
            liquidity=Liquidity.MAKER,
            ts_venue_ns=1_760_000_000_000_000_000 + n * 1_000,
        ),
        strategy=f"mm{producer % 4}",
    )


async def _group_commit(path: Path, round_: int) -> tuple[float, list[int], float]:
    """fills/s, per-call latencies (ns) and the mean batch size."""
    # Made up front and interleaved: fills in flight together are neighbours in id and time,
    # as on a venue. (Disjoint id ranges per producer would spread every batch over the whole
    # index: that measures B-tree page writes, about 40% slower here, not the journal.)
    work = [
        [_fill(p, i * PRODUCERS + p, f"G{round_}-") for i in range(FILLS_PER_PRODUCER)]
        for p in range(PRODUCERS)
    ]
    latencies: list[int] = []

    async with open_journal(path) as journal:

        async def produce(fills: list[FillRecorded]) -> None:
            for record in fills:
                sent = time.perf_counter_ns()
                await journal.record(record)
                latencies.append(time.perf_counter_ns() - sent)

        before = journal.statistics()
        started = time.perf_counter_ns()
        async with trio.open_nursery() as nursery:
            for fills in work:
                nursery.start_soon(produce, fills)
        elapsed_s = (time.perf_counter_ns() - started) / 1e9
        after = journal.statistics()
    batches = after.batches_committed - before.batches_committed
    total = PRODUCERS * FILLS_PER_PRODUCER
    return total / elapsed_s, latencies, total / batches


def _one_txn_per_fill(path: Path, round_: int) -> float:
    fills = [_fill(0, i, f"S{round_}-") for i in range(FLOOR_FILLS_PER_ROUND)]
    store = JournalStore(path)
    try:
        started = time.perf_counter_ns()
        for record in fills:
            store.write_batch([record])
        return FLOOR_FILLS_PER_ROUND / ((time.perf_counter_ns() - started) / 1e9)
    finally:
        store.close()


async def run_journal() -> dict[str, Any]:
    rates: list[float] = []
    floors: list[float] = []
    latencies: list[int] = []
    batch_sizes: list[float] = []
    with tempfile.TemporaryDirectory(prefix="steward-bench-journal-") as tmp:
        path = Path(tmp) / "journal.sqlite"
        JournalStore(path).close()  # create and migrate outside the timings
        for round_ in range(ROUNDS):
            floors.append(await trio.to_thread.run_sync(_one_txn_per_fill, path, round_))
            rate, samples, batch_size = await _group_commit(path, round_)
            rates.append(rate)
            latencies.extend(samples)
            batch_sizes.append(batch_size)
    fills_per_s = round(sorted(rates)[len(rates) // 2])
    floor_per_s = round(sorted(floors)[len(floors) // 2])
    return {
        "fills_per_s": fills_per_s,
        "one_txn_per_fill_per_s": floor_per_s,
        "ratio_vs_one_txn_per_fill": round(fills_per_s / floor_per_s, 2),
        "batch_p50_us": percentile_us(latencies, 0.50),
        "batch_p99_us": percentile_us(latencies, 0.99),
        "mean_batch_size": round(sum(batch_sizes) / len(batch_sizes), 1),
        "producers": PRODUCERS,
        "fills_per_round": PRODUCERS * FILLS_PER_PRODUCER,
        "meets_targets": fills_per_s >= TARGET_FILLS_PER_S,
    }
