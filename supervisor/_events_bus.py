"""The daemon's event bus: what WatchEvents streams.

Publishers are on the trio thread (supervision sinks, the control service, the journal's
commit sink); watchers read from gRPC pool threads. `publish` never blocks and never waits for
a watcher: each watcher has a bounded buffer, and an event that does not fit is dropped *for
that watcher only* and counted; the next event it does get carries that count in `dropped`.
Events are never merged or conflated, and a global `seq` shows where a gap is.

Sources, all wired by the daemon (nothing in the actors knows about the bus):
- supervision events, through the root's `on_event` sink (`supervision_sink`);
- control actions (who, what, outcome), from `ControlService._record`;
- orders, fills, funding, risk denials and trading state changes, from the journal's commit
  sink (`journal_sink`): a record is published once it is durable and only if it changed the
  journal, so a re-recorded fill or an unchanged order update is not published twice.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

import msgspec

from actors.journal import (
    EventRecorded,
    FillRecorded,
    FundingRecorded,
    JournalRecord,
    OrderRecorded,
    TradingStateRecorded,
)

from ._events import (
    ChildAbandoned,
    ChildExited,
    ChildRestartScheduled,
    ChildStarted,
    ChildStopped,
    EventSink,
    SupervisionEvent,
)

WATCH_BUFFER: Final = 1024  # events a watcher may lag behind before it starts missing some
MAX_WATCHERS: Final = 16  # each open stream pins a server thread: the pool is sized from this
CONTROL_ACTION: Final = "control_action"


class BusEvent(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    ts_ns: int
    kind: str
    source: str
    summary: str
    detail: dict[str, Any]


class Delivery(msgspec.Struct, frozen=True):
    event: BusEvent
    dropped: int
    """Events this watcher missed just before `event`."""


class TooManyWatchersError(Exception):
    """MAX_WATCHERS streams are open already."""


class Watcher:
    """One subscriber's bounded buffer. `get` is called from its own (non-trio) thread."""

    def __init__(self, bus: EventBus, kinds: frozenset[str], buffer: int) -> None:
        self._bus = bus
        self.kinds = kinds
        self._buffer = buffer
        self._items: collections.deque[Delivery] = collections.deque()
        self._missed = 0
        self.dropped_total = 0
        self._closed = False
        self._ready = threading.Condition()

    @property
    def closed(self) -> bool:
        return self._closed

    def _offer(self, event: BusEvent) -> None:
        if self.kinds and event.kind not in self.kinds:
            return
        with self._ready:
            if self._closed:
                return
            if len(self._items) >= self._buffer:
                self._missed += 1
                self.dropped_total += 1
                return
            self._items.append(Delivery(event, self._missed))
            self._missed = 0
            self._ready.notify()

    def get(self, timeout_s: float) -> Delivery | None:
        """The next event, or None after `timeout_s` or once closed (and drained)."""
        with self._ready:
            if not self._items and not self._closed:
                self._ready.wait(timeout_s)
            return self._items.popleft() if self._items else None

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        self._bus._remove(self)


class EventBus:
    def __init__(self, *, buffer: int = WATCH_BUFFER, max_watchers: int = MAX_WATCHERS,
                 clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._buffer = buffer
        self._max_watchers = max_watchers
        self._clock_ns = clock_ns
        self._lock = threading.Lock()
        self._watchers: list[Watcher] = []
        self._seq = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def watcher_count(self) -> int:
        with self._lock:
            return len(self._watchers)

    def subscribe(self, kinds: Iterable[str] = ()) -> Watcher:
        """A new watcher (raises TooManyWatchersError past `max_watchers`); a closed bus gives
        one that is closed already."""
        watcher = Watcher(self, frozenset(kinds), self._buffer)
        with self._lock:
            if self._closed:
                watcher._closed = True
                return watcher
            if len(self._watchers) >= self._max_watchers:
                raise TooManyWatchersError(f"{self._max_watchers} watchers already")
            self._watchers.append(watcher)
        return watcher

    def _remove(self, watcher: Watcher) -> None:
        with self._lock:
            if watcher in self._watchers:
                self._watchers.remove(watcher)

    def close(self) -> None:
        """Every watcher's stream ends (after what it has buffered); later publishes go
        nowhere. Called before the server stops, so open streams end at once."""
        with self._lock:
            self._closed = True
            watchers = list(self._watchers)
        for watcher in watchers:
            watcher.close()

    def publish(self, kind: str, source: str, summary: str, detail: dict[str, Any],
                ts_ns: int | None = None) -> None:
        """Never blocks on a watcher, never raises for one."""
        with self._lock:
            if self._closed:
                return
            self._seq += 1
            event = BusEvent(seq=self._seq, ts_ns=self._clock_ns() if ts_ns is None else ts_ns,
                             kind=kind, source=source, summary=summary, detail=detail)
            watchers = list(self._watchers)
        for watcher in watchers:
            watcher._offer(event)

    # ---- sources ----------------------------------------------------------------------------

    def supervision_sink(self, also: EventSink | None = None) -> EventSink:
        """An `on_event` sink publishing supervision events (after `also`, e.g. the log)."""

        def sink(event: SupervisionEvent) -> None:
            if also is not None:
                also(event)
            self.publish_supervision(event)

        return sink

    def publish_supervision(self, event: SupervisionEvent) -> None:
        detail = _plain(event)
        detail.pop("type", None)
        if isinstance(event, ChildStarted):
            kind = "actor_started"
            summary = f"started {event.path} (restarts {event.restart_count})"
            source = event.path
        elif isinstance(event, ChildExited):
            if event.error is None:
                kind, summary = "actor_exited", f"exited {event.path}"
            else:
                kind = "actor_crashed"
                summary = f"crashed {event.path}: {event.error.type}: {event.error.message}"
            source = event.path
        elif isinstance(event, ChildRestartScheduled):
            kind = "actor_restarting"
            summary = f"restarting {', '.join(event.group)} in {event.delay_s:.3f} s"
            source = event.path
        elif isinstance(event, ChildStopped):
            kind, summary, source = "actor_stopped", f"stopped {event.path} ({event.reason})", \
                event.path
        elif isinstance(event, ChildAbandoned):
            kind = "actor_abandoned"
            summary = f"abandoned {event.path} after {event.shutdown_s:g} s"
            source = event.path
        else:
            kind = "supervisor_gave_up"
            summary = (f"{event.path} gave up after {event.restarts} restarts in "
                       f"{event.window_s:g} s")
            source = event.path
        self.publish(kind, source, summary, detail)

    def publish_control(self, ts_ns: int, who: str, action: str, request: dict[str, object],
                        outcome: str, error: str) -> None:
        summary = f"{action} by {who}: {outcome}" + (f" ({error})" if error else "")
        self.publish(CONTROL_ACTION, who, summary,
                     {"who": who, "action": action, "request": _plain(request),
                      "outcome": outcome, "error": error}, ts_ns)

    def journal_sink(self, record: JournalRecord) -> None:
        """Publish a record the journal has just committed (and that changed it)."""
        if isinstance(record, OrderRecorded):
            summary = (f"order {record.client_id} {record.side.value} {record.qty} "
                       f"{record.symbol} on {record.venue}/{record.account}: "
                       f"{record.status.value}" + (f" ({record.reason})" if record.reason
                                                   else ""))
            self.publish("order", record.strategy, summary, _plain(record), record.ts_ns)
        elif isinstance(record, FillRecorded):
            fill = record.fill
            detail = _plain(record)
            self.publish("fill", record.strategy,
                         f"fill {fill.side.value} {fill.qty} {fill.symbol} @ {fill.price} on "
                         f"{fill.venue}/{fill.account} ({record.strategy})", detail)
        elif isinstance(record, FundingRecorded):
            payment = record.payment
            self.publish("funding", payment.venue,
                         f"funding {payment.amount} {payment.symbol} on {payment.venue}/"
                         f"{payment.account}", _plain(record))
        elif isinstance(record, TradingStateRecorded):
            self.publish("trading_state", record.actor,
                         f"trading {record.state.upper()} by {record.actor}: {record.reason}",
                         _plain(record), record.ts_ns)
        elif isinstance(record, EventRecorded):
            if record.kind == CONTROL_ACTION:
                return  # published by the control service itself, journal up or not
            try:
                parsed: object = json.loads(record.detail)
            except ValueError:
                parsed = record.detail
            detail = parsed if isinstance(parsed, dict) else {"detail": parsed}
            self.publish(record.kind, record.source,
                         f"{record.kind} from {record.source}: {record.detail}"[:500], detail,
                         record.ts_ns)


def _plain(value: object) -> dict[str, Any]:
    """JSON-ready data; Decimals as strings."""
    plain = msgspec.to_builtins(value, enc_hook=str)
    return plain if isinstance(plain, dict) else {"value": plain}
