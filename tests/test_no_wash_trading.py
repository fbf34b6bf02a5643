"""No account trades with itself or a sibling: risk holds a resting order crossable until the
venue confirms it ended, however its cancel fares (review: a forwarded cancel made it
uncrossable at once, so a sibling's crossing order could reach the venue first)."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import trio

from actors.messages import CancelOrder, OrderIntent, SubmitOrder
from exchanges import AccountClient, OrderType, Side, TimeInForce, VenueOrder
from tests.faults import FaultyAccount
from tests.trading import paper_config, running_daemon

VENUE, SYMBOL = "paper-a", "BTC-PERP"


class SlowCancels(FaultyAccount):
    delay_s = 0.0

    async def cancel_order(self, symbol: str, client_id: str) -> VenueOrder:
        await trio.sleep(self.delay_s)
        return await super().cancel_order(symbol, client_id)


def limit(client_id: str, account: str, side: Side, price: Decimal,
          tif: TimeInForce) -> SubmitOrder:
    return SubmitOrder(intent=OrderIntent(
        client_id=client_id, strategy="nobody", venue=VENUE, account=account, symbol=SYMBOL,
        side=side, order_type=OrderType.LIMIT, qty=Decimal("0.01"), price=price, tif=tif,
    ))


async def sibling_crosses_while_cancelling(home: object, *, lose_cancel: bool,
                                           delay_s: float) -> bool:
    """Rest a bid on cycle-a, cancel it, and at once send cycle-b (a sibling) a crossing
    sell. True if the sell reached the venue while the bid still rested there."""
    config = msgspec.structs.replace(paper_config(), strategies=[])

    def wrap(client: AccountClient) -> AccountClient:
        return SlowCancels(client)

    async with running_daemon(home, config, wrap=wrap) as daemon:  # type: ignore[arg-type]
        await trio.sleep(3)
        risk = daemon.root.registry.lookup("risk")
        a = daemon.assembly.account_client(VENUE, "cycle-a")
        b = daemon.assembly.account_client(VENUE, "cycle-b")
        assert isinstance(a, SlowCancels) and isinstance(b, SlowCancels)
        a.delay_s = delay_s
        venue = daemon.assembly.venues[VENUE]
        best_bid = venue.engine.books[SYMBOL].best_bid
        assert best_bid is not None
        bid = best_bid - 20
        await risk.tell(limit("a-bid", "cycle-a", Side.BUY, bid, TimeInForce.POST_ONLY))
        await trio.sleep(0.5)
        if lose_cancel:
            a.fail_next_cancel("lost_request")
        await risk.tell(CancelOrder(venue=VENUE, account="cycle-a", symbol=SYMBOL,
                                    client_id="a-bid"))
        await trio.sleep(0.01)
        await risk.tell(limit("b-sell", "cycle-b", Side.SELL, bid, TimeInForce.IOC))
        await trio.sleep(0.01)
        crossed = "b-sell" in [r.client_id for r in b.place_calls] and (
            "a-bid" in venue.ledger.account("cycle-a").open_orders
        )
        await trio.sleep(2)
        return crossed


async def test_sibling_order_when_the_cancel_of_the_order_it_crosses_fails_then_denied(
    autojump_clock, steward_home
):
    assert not await sibling_crosses_while_cancelling(steward_home, lose_cancel=True,
                                                      delay_s=0.0)


async def test_sibling_order_when_the_cancel_it_waits_for_is_slow_then_denied(
    autojump_clock, steward_home
):
    assert not await sibling_crosses_while_cancelling(steward_home, lose_cancel=False,
                                                      delay_s=0.5)
