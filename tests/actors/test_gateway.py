"""The gateway through the whole core, on MockClock: retries that reuse the client id, unknown
outcomes settled by the venue, expiry, and reconciliation after warm and cold restarts.

Orders go in the way strategies send them, through risk; a probe actor in the strategies
branch records every event the gateway and risk send back.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

import msgspec
import trio

from actors import Actor
from actors.journal import EventRecorded
from actors.messages import (
    CancelOrder,
    OrderAccepted,
    OrderDenied,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    OrderUpdated,
    SubmitOrder,
    gateway_name,
)
from exchanges import OrderRequest, OrderType, Side, TimeInForce
from supervisor import ChildSpec
from supervisor._config import DaemonConfig
from tests.faults import RATE_LIMIT_RETRY_AFTER_S, FaultyAccount, requests_by_client_id
from tests.trading import (
    RunningDaemon,
    journal_store,
    paper_config,
    running_daemon,
    venue_between_runs,
)

VENUE, ACCOUNT, SYMBOL = "paper-a", "mm", "BTC-PERP"
GATEWAY = gateway_name(VENUE, ACCOUNT)
Seen = OrderAccepted | OrderRejected | OrderUpdated | OrderFilled | OrderDenied


class Probe(Actor):
    def __init__(self, seen: list[Seen]) -> None:
        self.seen = seen

    async def on_order_accepted(self, message: OrderAccepted) -> None:
        self.seen.append(message)

    async def on_order_rejected(self, message: OrderRejected) -> None:
        self.seen.append(message)

    async def on_order_updated(self, message: OrderUpdated) -> None:
        self.seen.append(message)

    async def on_order_filled(self, message: OrderFilled) -> None:
        self.seen.append(message)

    async def on_order_denied(self, message: OrderDenied) -> None:
        self.seen.append(message)


def quiet_config(*, cancel_on_stop: bool = True) -> DaemonConfig:
    """The paper venues and core with no strategies: the test places every order."""
    return msgspec.structs.replace(paper_config(), strategies=[], cancel_on_stop=cancel_on_stop)


async def add_probe(daemon: RunningDaemon, seen: list[Seen]) -> None:
    await daemon.root.find_supervisor("strategies").start_child(
        ChildSpec("probe", lambda: Probe(seen))
    )


def intent(client_id: str, side: Side = Side.BUY, *, below_mid_bps: int = 50,
           daemon: RunningDaemon, qty: str = "0.01", order_type: OrderType = OrderType.LIMIT,
           tif: TimeInForce = TimeInForce.POST_ONLY,
           expire_after_s: float | None = None) -> OrderIntent:
    mid = daemon.assembly.venues[VENUE].engine.books[SYMBOL].mid
    assert mid is not None
    offset = mid * below_mid_bps / 10_000
    instrument = daemon.assembly.instruments[(VENUE, SYMBOL)]
    price = instrument.round_price(mid - offset if side is Side.BUY else mid + offset, side)
    return OrderIntent(
        client_id=client_id, strategy="probe", venue=VENUE, account=ACCOUNT, symbol=SYMBOL,
        side=side, order_type=order_type, qty=Decimal(qty),
        price=price if order_type is OrderType.LIMIT else None, tif=tif,
        expire_after_s=expire_after_s, ts_created_ns=time.time_ns(),
    )


async def submit(daemon: RunningDaemon, order: OrderIntent) -> None:
    await daemon.root.registry.lookup("risk").tell(SubmitOrder(intent=order))
    await trio.sleep(1)


def faulty(daemon: RunningDaemon) -> FaultyAccount:
    client = daemon.assembly.account_client(VENUE, ACCOUNT)
    assert isinstance(client, FaultyAccount)
    return client


async def venue_orders(daemon: RunningDaemon, client_id: str) -> list[object]:
    account = daemon.assembly.venues[VENUE].account(ACCOUNT)
    return [o for o in await account.open_orders() if o.client_id == client_id]


def kinds(seen: list[Seen], client_id: str) -> list[str]:
    out = []
    for event in seen:
        order = getattr(event, "order", None) or getattr(event, "intent", None)
        if order is not None and order.client_id == client_id:
            status = getattr(getattr(event, "order", None), "status", None)
            out.append(type(event).__name__ + (f":{status.value}" if status else ""))
    return out


def events_of(home: Path, kind: str) -> list[EventRecorded]:
    store = journal_store(home)
    try:
        return [e for e in store.events() if e.kind == kind]
    finally:
        store.close()


# ---- placing -----------------------------------------------------------------------------------


async def test_submit_when_request_lost_then_retried_with_same_client_id_and_placed_once(
    autojump_clock, steward_home
):
    seen: list[Seen] = []
    async with running_daemon(steward_home, quiet_config(), wrap=FaultyAccount) as daemon:
        await add_probe(daemon, seen)
        faulty(daemon).fail_next_place("lost_request")
        await submit(daemon, intent("retry-1", daemon=daemon))
        assert requests_by_client_id(faulty(daemon).place_calls) == {"retry-1": 2}
        assert len(await venue_orders(daemon, "retry-1")) == 1
        assert kinds(seen, "retry-1") == ["OrderAccepted:open"]


async def test_submit_when_response_lost_then_found_on_venue_not_duplicated(
    autojump_clock, steward_home
):
    seen: list[Seen] = []
    async with running_daemon(steward_home, quiet_config(), wrap=FaultyAccount) as daemon:
        await add_probe(daemon, seen)
        faulty(daemon).fail_next_place("lost_response")
        await submit(daemon, intent("lost-1", daemon=daemon))
        assert len(await venue_orders(daemon, "lost-1")) == 1
        assert kinds(seen, "lost-1") == ["OrderAccepted:open"]


async def test_submit_when_outcome_unknown_and_venue_has_it_then_accepted_without_retry(
    autojump_clock, steward_home
):
    seen: list[Seen] = []
    async with running_daemon(steward_home, quiet_config(), wrap=FaultyAccount) as daemon:
        await add_probe(daemon, seen)
        faulty(daemon).fail_next_place("unknown_outcome")
        await submit(daemon, intent("u-1", daemon=daemon))
        assert requests_by_client_id(faulty(daemon).place_calls) == {"u-1": 1}
        assert len(await venue_orders(daemon, "u-1")) == 1
        assert kinds(seen, "u-1") == ["OrderAccepted:open"]


async def test_submit_when_outcome_unknown_and_venue_never_had_it_then_rejected_not_guessed(
    autojump_clock, steward_home
):
    seen: list[Seen] = []
    async with running_daemon(steward_home, quiet_config(), wrap=FaultyAccount) as daemon:
        await add_probe(daemon, seen)
        faulty(daemon).fail_next_place("unknown_outcome_not_placed")
        await submit(daemon, intent("u-2", daemon=daemon))
        assert requests_by_client_id(faulty(daemon).place_calls) == {"u-2": 1}
        assert await venue_orders(daemon, "u-2") == []
        [rejected] = [e for e in seen if isinstance(e, OrderRejected)]
        assert rejected.reason == "unknown_outcome_not_found"


async def test_submit_when_venue_rate_limits_then_quiet_for_retry_after_then_places_again(
    autojump_clock, steward_home
):
    seen: list[Seen] = []
    async with running_daemon(steward_home, quiet_config(), wrap=FaultyAccount) as daemon:
        await add_probe(daemon, seen)
        faulty(daemon).fail_next_place("rate_limited")
        await submit(daemon, intent("rl-1", daemon=daemon))  # refused by the venue: 429
        await submit(daemon, intent("rl-2", daemon=daemon))  # 1 s later: refused locally
        assert requests_by_client_id(faulty(daemon).place_calls) == {"rl-1": 1}
        reasons = {e.intent.client_id: e.reason for e in seen if isinstance(e, OrderRejected)}
        assert reasons == {"rl-1": "rate_limited", "rl-2": "rate_limited"}
        await trio.sleep(RATE_LIMIT_RETRY_AFTER_S)
        await submit(daemon, intent("rl-3", daemon=daemon))
        assert requests_by_client_id(faulty(daemon).place_calls) == {"rl-1": 1, "rl-3": 1}
        assert kinds(seen, "rl-3") == ["OrderAccepted:open"]


async def test_submit_when_outcome_unknown_and_venue_cannot_be_asked_then_pending_until_settled(
    autojump_clock, steward_home
):
    seen: list[Seen] = []
    async with running_daemon(steward_home, quiet_config(), wrap=FaultyAccount) as daemon:
        await add_probe(daemon, seen)
        faulty(daemon).fail_next_place("unknown_outcome")  # placed, but the answer was a 503
        faulty(daemon).get_rate_limits = 2  # ...and asking about it is rate-limited twice
        await submit(daemon, intent("unsettled-1", daemon=daemon))
        await trio.sleep(2 * RATE_LIMIT_RETRY_AFTER_S + 5)
        # Never refused (its strategy would place again): the user stream reported the order.
        assert kinds(seen, "unsettled-1") == ["OrderUpdated:open"]
        assert faulty(daemon).get_rate_limits < 2  # the venue was asked, and said 429
        assert requests_by_client_id(faulty(daemon).place_calls) == {"unsettled-1": 1}
        assert len(await venue_orders(daemon, "unsettled-1")) == 1


async def test_order_when_its_expiry_passes_then_gateway_cancels_it(autojump_clock, steward_home):
    seen: list[Seen] = []
    async with running_daemon(steward_home, quiet_config()) as daemon:
        await add_probe(daemon, seen)
        await submit(daemon, intent("exp-1", daemon=daemon, expire_after_s=10))
        assert len(await venue_orders(daemon, "exp-1")) == 1
        await trio.sleep(5)
        assert len(await venue_orders(daemon, "exp-1")) == 1  # not yet
        await trio.sleep(6)
        assert await venue_orders(daemon, "exp-1") == []
        assert kinds(seen, "exp-1") == ["OrderAccepted:open", "OrderUpdated:cancelled"]


async def test_fill_when_journaled_then_probe_risk_and_positions_hear_it(
    autojump_clock, steward_home
):
    seen: list[Seen] = []
    async with running_daemon(steward_home, quiet_config()) as daemon:
        await add_probe(daemon, seen)
        await submit(daemon, intent("m-1", daemon=daemon, order_type=OrderType.MARKET,
                                    tif=TimeInForce.IOC))
        [filled] = [e for e in seen if isinstance(e, OrderFilled)]
        store = journal_store(steward_home)
        try:
            assert [r.fill for r in store.fills()] == [filled.fill]
        finally:
            store.close()
        status = await daemon.status()
        probe_positions = [p for p in status.positions if p.strategy == "probe"]
        assert [p.qty for p in probe_positions] == [Decimal("0.01")]


# ---- reconciliation ----------------------------------------------------------------------------


async def test_warm_restart_when_venue_changed_while_gateway_down_then_adopts_and_records(
    autojump_clock, steward_home
):
    seen: list[Seen] = []
    async with running_daemon(steward_home, quiet_config()) as daemon:
        await add_probe(daemon, seen)
        await submit(daemon, intent("kept", daemon=daemon))
        await submit(daemon, intent("vanishes", daemon=daemon, below_mid_bps=60))
        direct = daemon.assembly.venues[VENUE].account(ACCOUNT)
        core = daemon.root.find_supervisor("core")
        await core.kill_child(GATEWAY)
        # While the gateway is down (its restart backs off): the venue changes under us.
        await direct.cancel_order(SYMBOL, "vanishes")
        mid = daemon.assembly.venues[VENUE].engine.books[SYMBOL].mid
        assert mid is not None
        await direct.place_order(OrderRequest(
            client_id="stranger", symbol=SYMBOL, side=Side.SELL, order_type=OrderType.LIMIT,
            qty=Decimal("0.01"),
            price=daemon.assembly.instruments[(VENUE, SYMBOL)].round_price(
                mid * Decimal("1.01"), Side.SELL),
            tif=TimeInForce.POST_ONLY,
        ))
        await direct.place_order(OrderRequest(
            client_id="missed-fill", symbol=SYMBOL, side=Side.BUY,
            order_type=OrderType.MARKET, qty=Decimal("0.02"),
        ))
        await trio.sleep(5)  # restarted and reconciled
        status = await daemon.status()
        assert all(check.agrees for check in status.position_checks)
        tracked = {o.client_id for o in status.open_orders}
        assert {"kept", "stranger"} <= tracked and "vanishes" not in tracked
        # ...and its owner heard that it is gone, so it does not count on it any more.
        assert kinds(seen, "vanishes")[-1] == "OrderUpdated:cancelled"
    adopted = [json.loads(e.detail)["client_id"]
               for e in events_of(steward_home, "reconcile_adopted_order")]
    closed = [json.loads(e.detail)["client_id"]
              for e in events_of(steward_home, "reconcile_closed_order")]
    fills = [json.loads(e.detail)["client_id"]
             for e in events_of(steward_home, "reconcile_adopted_fill")]
    assert adopted == ["stranger"] and closed == ["vanishes"] and fills == ["missed-fill"]


async def test_cold_restart_when_venue_changed_between_runs_then_adopts_and_records(
    autojump_clock, steward_home
):
    config = quiet_config(cancel_on_stop=False)  # orders outlive the daemon, as on a venue
    seen: list[Seen] = []
    async with running_daemon(steward_home, config) as daemon:
        await add_probe(daemon, seen)
        await submit(daemon, intent("overnight", daemon=daemon))
        await submit(daemon, intent("closed-meanwhile", daemon=daemon, below_mid_bps=60))
    # Between runs someone cancels an order on the venue, rests another, trades by hand.
    async with venue_between_runs(steward_home, VENUE, config) as venue:
        direct = venue.account(ACCOUNT)
        await direct.cancel_order(SYMBOL, "closed-meanwhile")
        book = venue.engine.books[SYMBOL]
        assert book.best_ask is not None
        await direct.place_order(OrderRequest(
            client_id="stranger", symbol=SYMBOL, side=Side.SELL, order_type=OrderType.LIMIT,
            qty=Decimal("0.01"), price=book.best_ask + 300, tif=TimeInForce.POST_ONLY,
        ))
        await direct.place_order(OrderRequest(
            client_id="by-hand", symbol=SYMBOL, side=Side.SELL, order_type=OrderType.MARKET,
            qty=Decimal("0.03"),
        ))
    async with running_daemon(steward_home, config) as daemon:
        await trio.sleep(2)
        status = await daemon.status()
        assert {o.client_id for o in status.open_orders if o.venue == VENUE} == {
            "overnight", "stranger",
        }
        by_hand = [p for p in status.positions if p.venue == VENUE and p.symbol == SYMBOL]
        assert sum(p.qty for p in by_hand) == Decimal("-0.03")
        assert all(check.agrees for check in status.position_checks)
    adopted = [json.loads(e.detail)["client_id"]
               for e in events_of(steward_home, "reconcile_adopted_order")]
    closed = [json.loads(e.detail)["client_id"]
              for e in events_of(steward_home, "reconcile_closed_order")]
    fills = [json.loads(e.detail)["client_id"]
             for e in events_of(steward_home, "reconcile_adopted_fill")]
    assert adopted == ["stranger"] and closed == ["closed-meanwhile"] and fills == ["by-hand"]


# ---- regressions from review -------------------------------------------------------------------


async def test_cancel_when_sent_right_behind_its_order_then_never_overtakes_it(
    autojump_clock, steward_home
):
    seen: list[Seen] = []
    async with running_daemon(steward_home, quiet_config()) as daemon:
        await add_probe(daemon, seen)
        risk = daemon.root.registry.lookup("risk")
        order = intent("quick", daemon=daemon)
        await risk.tell(SubmitOrder(intent=order))
        await risk.tell(CancelOrder(venue=VENUE, account=ACCOUNT, symbol=SYMBOL,
                                    client_id="quick"))
        await trio.sleep(1)
        assert await venue_orders(daemon, "quick") == []
        assert kinds(seen, "quick") == ["OrderAccepted:open", "OrderUpdated:cancelled"]


async def test_cancel_when_its_outcome_is_unknown_then_gateway_keeps_running(
    autojump_clock, steward_home
):
    seen: list[Seen] = []
    async with running_daemon(steward_home, quiet_config(), wrap=FaultyAccount) as daemon:
        await add_probe(daemon, seen)
        await submit(daemon, intent("slow-cancel", daemon=daemon))
        faulty(daemon).fail_next_cancel("lost_request")
        risk = daemon.root.registry.lookup("risk")
        await risk.tell(CancelOrder(venue=VENUE, account=ACCOUNT, symbol=SYMBOL,
                                    client_id="slow-cancel"))
        await trio.sleep(1)
        gateway_row = next(a for a in daemon.root.snapshot() if a.path.endswith(GATEWAY))
        assert gateway_row.restart_count == 0  # not crashed: nothing else was pulled
        assert len(await venue_orders(daemon, "slow-cancel")) == 1  # the owner may retry
        await risk.tell(CancelOrder(venue=VENUE, account=ACCOUNT, symbol=SYMBOL,
                                    client_id="slow-cancel"))
        await trio.sleep(1)
        assert await venue_orders(daemon, "slow-cancel") == []


async def test_submit_when_market_order_answer_lost_then_executed_once(
    autojump_clock, steward_home
):
    seen: list[Seen] = []
    async with running_daemon(steward_home, quiet_config(), wrap=FaultyAccount) as daemon:
        await add_probe(daemon, seen)
        faulty(daemon).fail_next_place("lost_response")
        await submit(daemon, intent("mkt-1", daemon=daemon, order_type=OrderType.MARKET,
                                    tif=TimeInForce.IOC))
        fills = [f for f in daemon.assembly.venues[VENUE].ledger.fills
                 if f.client_id == "mkt-1"]
        assert sum(f.qty for f in fills) == Decimal("0.01")  # filled once, not twice
        status = await daemon.status()
        assert [p.qty for p in status.positions if p.strategy == "probe"] == [Decimal("0.01")]
