"""Backpack local order book: REST `/api/v1/depth` snapshot + `depth.<sym>` diffs (venues.md §2.5).

The doc's one rule (venues.md §2.5): "Quantities are absolute. `U` must equal the previous
`u` + 1; otherwise re-query REST `/depth`." It says nothing about joining the stream to the
snapshot, so the same rule is carried over with the snapshot's `lastUpdateId` standing in for
the previous `u`, loosened to a bridge because an aggregated event (`depth.200ms.<sym>`) may
straddle the snapshot:

- buffered events with `u <= lastUpdateId` are already in the snapshot and are dropped;
- the first applied event must satisfy `U <= lastUpdateId + 1 <= u` (re-applying the overlap is
  harmless, as quantities are absolute);
- after that each event's `U` must equal the previous `u + 1`, else resync; a repeated or older
  event is a resync too, because the doc allows no exception.

Note that the REST snapshot's `lastUpdateId` is a JSON *string*; convert it to int first.
"""

from __future__ import annotations

from .._local_book import _SequencedBookSync
from ._streams import BackpackDepthUpdate


class BackpackBookSync(_SequencedBookSync[BackpackDepthUpdate]):
    """One symbol's book from `depth.<sym>` events and `GET /api/v1/depth` snapshots.

    Usage: subscribe, pass every event to `on_update` (they are buffered), fetch the snapshot
    and pass it to `on_snapshot`. Whenever either returns `SyncResult.RESYNC_NEEDED`, fetch a
    new snapshot; events keep being buffered meanwhile. Pure: no I/O, no clock.
    """

    def _covered_by_snapshot(self, event: BackpackDepthUpdate, snapshot_id: int) -> bool:
        return event.final_update_id <= snapshot_id

    def _bridges_snapshot(self, event: BackpackDepthUpdate, snapshot_id: int) -> bool:
        return event.first_update_id <= snapshot_id + 1 <= event.final_update_id

    def _follows(self, event: BackpackDepthUpdate, previous_final_id: int) -> bool:
        return event.first_update_id == previous_final_id + 1
