"""Aster futures local order book: the documented snapshot + diff procedure (venues.md §1.7).

The doc ([AF1] §How to manage a local order book), as quoted in venues.md:

  1. Buffer the stream events.
  2. Fetch the REST snapshot with limit=1000.
  3. Drop events with `u < lastUpdateId`.
  4. The first applied event must satisfy `U <= lastUpdateId <= u`.
  5. After that, each event's `pu` must equal the previous event's `u`; otherwise resync.
  6. Quantities are absolute values, and qty 0 means remove the level.

Rule 5 is applied literally: a repeated or older event (`pu` != previous `u`) is a resync, not
skipped, because the doc allows no exception. Rules 3 and 4 apply both to the buffered events
replayed at snapshot time and to live events arriving before the first one bridges.
"""

from __future__ import annotations

from .._local_book import _SequencedBookSync
from ._streams import AsterDepthUpdate


class AsterBookSync(_SequencedBookSync[AsterDepthUpdate]):
    """One symbol's book from `<s>@depth@100ms` events and `GET /fapi/v1/depth` snapshots.

    Usage: subscribe, pass every event to `on_update` (they are buffered), fetch the snapshot
    and pass it to `on_snapshot`. Whenever either returns `SyncResult.RESYNC_NEEDED`, fetch a
    new snapshot; events keep being buffered meanwhile. Pure: no I/O, no clock.
    """

    def _covered_by_snapshot(self, event: AsterDepthUpdate, snapshot_id: int) -> bool:
        return event.final_update_id < snapshot_id  # rule 3

    def _bridges_snapshot(self, event: AsterDepthUpdate, snapshot_id: int) -> bool:
        return event.first_update_id <= snapshot_id <= event.final_update_id  # rule 4

    def _follows(self, event: AsterDepthUpdate, previous_final_id: int) -> bool:
        return event.prev_final_update_id == previous_final_id  # rule 5
