"""Daemon data → `steward.v1` messages, and back for parameters: pure, no grpc, no trio.

Decimals go out as strings; a `Struct` carries strategy parameters (every number in a Struct
is a double, so decimal knobs are sent and shown as strings).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Final

import msgspec
from google.protobuf import json_format, struct_pb2

from actors.messages import ParamsReply, TradingState, TradingStateChanged
from protos import control_pb2 as pb

from ._control import StopReport
from ._events_bus import Delivery
from ._snapshot import ActorState
from ._status import DaemonStatus

TRADING_STATES: Final = {
    TradingState.ACTIVE: pb.TRADING_STATE_ACTIVE,
    TradingState.REDUCE_ONLY: pb.TRADING_STATE_REDUCE_ONLY,
    TradingState.HALTED: pb.TRADING_STATE_HALTED,
}
ACTOR_STATES: Final = {
    ActorState.STARTING: pb.ACTOR_STATE_STARTING,
    ActorState.RUNNING: pb.ACTOR_STATE_RUNNING,
    ActorState.RESTARTING: pb.ACTOR_STATE_RESTARTING,
    ActorState.STOPPED: pb.ACTOR_STATE_STOPPED,
    ActorState.FAILED: pb.ACTOR_STATE_FAILED,
}


def _text(value: Decimal | None) -> str:
    return "" if value is None else str(value)


def trading_status(changed: TradingStateChanged | None) -> pb.TradingStatus:
    if changed is None:
        return pb.TradingStatus(state=pb.TRADING_STATE_UNSPECIFIED)
    return pb.TradingStatus(state=TRADING_STATES[changed.state], reason=changed.reason,
                            actor=changed.actor, ts_ns=changed.ts_ns)


def status_message(status: DaemonStatus) -> pb.Status:
    reply = pb.Status(name=status.name, ts_ns=status.ts_ns, uptime_s=status.uptime_s,
                      trading=trading_status(status.trading))
    for actor in status.actors:
        item = reply.actors.add(path=actor.path, kind=actor.kind, state=ACTOR_STATES[actor.state],
                                restart_count=actor.restart_count,
                                mailbox_depth=actor.mailbox_depth, uptime_s=actor.uptime_s)
        if actor.last_error is not None:
            item.last_error.type = actor.last_error.type
            item.last_error.message = actor.last_error.message
    for feed in status.feeds:
        reply.feeds.add(venue=feed.venue, connected=feed.connected, reconnects=feed.reconnects,
                        data_age_s=feed.data_age_s, stale_symbols=list(feed.stale_symbols))
    realized = unrealized = fees = funding = Decimal(0)
    for p in status.positions:
        reply.positions.add(
            venue=p.venue, account=p.account, symbol=p.symbol, strategy=p.strategy,
            qty=str(p.qty), entry_price=str(p.entry_price), realized_pnl=str(p.realized_pnl),
            unrealized_pnl=str(p.unrealized_pnl), fees=str(p.fees), funding=str(p.funding),
            maker_volume=str(p.maker_volume), taker_volume=str(p.taker_volume),
            mark_price=_text(p.mark_price),
        )
        realized += p.realized_pnl
        unrealized += p.unrealized_pnl
        fees += p.fees
        funding += p.funding
    reply.pnl.CopyFrom(pb.Pnl(realized=str(realized), unrealized=str(unrealized), fees=str(fees),
                              funding=str(funding),
                              net=str(realized + unrealized - fees + funding)))
    for check in status.position_checks:
        reply.position_checks.add(venue=check.venue, account=check.account, symbol=check.symbol,
                                  tracked_qty=str(check.tracked_qty),
                                  venue_qty=_text(check.venue_qty), agrees=check.agrees)
    for o in status.open_orders:
        reply.open_orders.add(
            venue=o.venue, account=o.account, client_id=o.client_id,
            venue_order_id=o.venue_order_id, symbol=o.symbol, side=o.side.value,
            order_type=o.order_type.value, tif=o.tif.value, qty=str(o.qty),
            price=_text(o.price), filled_qty=str(o.filled_qty), status=o.status.value,
            reduce_only=o.reduce_only, ts_venue_ns=o.ts_venue_ns,
        )
    return reply


def params_message(actor: str, reply: ParamsReply, dry_run: bool = False) -> pb.Params:
    message = pb.Params(actor=actor, schema_json=json.dumps(reply.schema, default=str),
                        accepted=reply.accepted, dry_run=dry_run)
    # Through msgspec's JSON: Decimals become strings, which a Struct carries exactly.
    message.params.update(json.loads(msgspec.json.encode(reply.params)))
    return message


def params_from_struct(params: struct_pb2.Struct) -> dict[str, object]:
    """A Struct's numbers are doubles: whole ones come back as ints, so `max_orders = 3`
    validates as the int it was written as."""
    plain = json_format.MessageToDict(params)
    return {key: _whole(value) for key, value in plain.items()}


def _whole(value: object) -> object:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def stop_message(report: StopReport) -> pb.EmergencyStopReply:
    reply = pb.EmergencyStopReply(already_halted=report.already_halted,
                                  elapsed_ms=report.elapsed_ms)
    for outcome in report.accounts:
        reply.accounts.add(venue=outcome.venue, account=outcome.account,
                           orders_cancelled=outcome.orders_cancelled,
                           positions_flattened=outcome.positions_flattened, error=outcome.error)
    return reply


def event_message(delivery: Delivery) -> pb.Event:
    event = delivery.event
    return pb.Event(seq=event.seq, ts_ns=event.ts_ns, kind=event.kind, source=event.source,
                    summary=event.summary,
                    detail_json=json.dumps(event.detail, default=str, sort_keys=True),
                    dropped=delivery.dropped)
