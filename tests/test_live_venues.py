"""The daemon trading on the live adapters, end to end, against loopback venues.

Both venue simulators serve their REST protocol over real HTTP (`http_sim`) and their streams
over real WebSockets on 127.0.0.1; the daemon is configured with `kind = "aster"` and
`kind = "backpack"` venues whose base URLs point at them, and credentials in environment
variables, exactly as an operator runs it. A market maker quotes on each venue while the
test moves each venue's book; resting quotes the book moves through fill as maker. One order
placement on each venue answers 503 after the venue took the order: the gateway must find the
order, not place it twice. The Aster account runs once on V1 HMAC credentials and once on V3
API-wallet credentials (`aster_scheme`), which trade on `/fapi/v3/...`.

Real clock (sockets and MockClock do not mix): the test waits on the venues' state, bounded.
"""

from __future__ import annotations

import base64
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio
from eth_account import Account
from nacl.signing import SigningKey

from actors.journal import Journal
from exchanges import Instrument
from supervisor._config import DaemonConfig
from tests.exchanges.aster_sim import AsterSimulator, open_aster_ws
from tests.exchanges.backpack_sim import BackpackSimulator, open_backpack_ws
from tests.exchanges.http_sim import HttpSim, open_http_sim
from tests.trading import RunningDaemon, journal_store, running_daemon

ASTER_SYMBOL, BACKPACK_SYMBOL = "BTCUSDT", "BTC_USDC_PERP"
BACKPACK_ORDER_PATH = "/api/v1/order"
ASTER_ORDER_PATHS = {"hmac": "/fapi/v1/order", "wallet": "/fapi/v3/order"}
"""Where the daemon places Aster orders under each credential scheme (venues.md §1.6)."""
START_PRICE = Decimal(60_000)
TRADING_BOUND_S = 30.0
STEP_S = 0.02
"""How often the test moves each venue's book (a busy market)."""


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class LoopbackVenues:
    aster: AsterSimulator
    backpack: BackpackSimulator
    aster_http: HttpSim
    backpack_http: HttpSim
    environ: dict[str, str]
    aster_ws_url: str
    backpack_ws_url: str
    aster_scheme: str
    """"hmac" (V1 API key + secret) or "wallet" (V3 user + API wallet)."""

    @property
    def aster_order_path(self) -> str:
        return ASTER_ORDER_PATHS[self.aster_scheme]


@asynccontextmanager
async def loopback_venues(aster_scheme: str = "hmac") -> AsyncIterator[LoopbackVenues]:
    """Both simulators behind real HTTP and WebSocket servers, with fresh credentials; the
    Aster account's are V1 HMAC or V3 API wallet (`aster_scheme`, "hmac" or "wallet")."""
    aster_key, aster_secret = os.urandom(32).hex(), os.urandom(32).hex()
    aster_user, aster_signer = Account.create(), Account.create()
    aster = AsterSimulator(
        api_key=aster_key, secret=aster_secret, clock_ms=wall_ms,
        wallet_user=aster_user.address, wallet_signer=aster_signer.address,
        quote_balance=Decimal(100_000),
        instruments=[Instrument(venue="aster", symbol=ASTER_SYMBOL, base="BTC", quote="USDT",
                                tick_size=Decimal("0.1"), step_size=Decimal("0.001"),
                                min_qty=Decimal("0.001"), min_notional=Decimal(5))])
    signing_key = SigningKey.generate()
    backpack = BackpackSimulator(
        api_key_b64=base64.b64encode(bytes(signing_key.verify_key)).decode(), now_ms=wall_ms())
    backpack.add_market(BACKPACK_SYMBOL, tick="0.1", step="0.001", min_qty="0.001")
    backpack.set_balance("USDC", "100000")
    aster_environ = {
        "hmac": {"STEWARD_TEST_ASTER_KEY": aster_key, "STEWARD_TEST_ASTER_SECRET": aster_secret},
        "wallet": {"STEWARD_TEST_ASTER_USER": aster_user.address,
                   "STEWARD_TEST_ASTER_SIGNER": aster_signer.address,
                   "STEWARD_TEST_ASTER_WALLET_KEY": aster_signer.key.hex()},
    }[aster_scheme]
    environ = {
        **aster_environ,
        "STEWARD_TEST_BACKPACK_KEY": backpack.api_key_b64,
        "STEWARD_TEST_BACKPACK_SEED": base64.b64encode(bytes(signing_key)).decode(),
    }
    async with AsyncExitStack() as stack:
        aster_http = await stack.enter_async_context(open_http_sim(aster.handle))
        backpack_http = await stack.enter_async_context(open_http_sim(backpack.handle))
        aster_ws = await stack.enter_async_context(open_aster_ws(aster))
        backpack_ws = await stack.enter_async_context(open_backpack_ws(backpack))
        yield LoopbackVenues(aster, backpack, aster_http, backpack_http, environ, aster_ws,
                             backpack_ws, aster_scheme)


def live_config(venues: LoopbackVenues) -> DaemonConfig:
    """What an operator writes in live.toml, with the base URLs on loopback."""
    market_maker: dict[str, Any] = {
        "account": "mm", "quantity": "0.001", "max_position": "0.01", "spread_bps": "4",
        "layer_step_bps": "2", "max_orders": 2, "interval_s": 1.0, "requote_bps": "10",
        "order_expire_s": 30.0,
    }
    aster_account = {
        "hmac": {"api_key_env": "STEWARD_TEST_ASTER_KEY",
                 "api_secret_env": "STEWARD_TEST_ASTER_SECRET"},
        "wallet": {"user_env": "STEWARD_TEST_ASTER_USER",
                   "signer_env": "STEWARD_TEST_ASTER_SIGNER",
                   "private_key_env": "STEWARD_TEST_ASTER_WALLET_KEY"},
    }[venues.aster_scheme]
    raw = {
        "name": "live-loopback",
        "control": {"bind": "127.0.0.1:0"},
        "venues": [
            {"name": "aster", "kind": "aster", "symbols": [ASTER_SYMBOL],
             "rest_url": venues.aster_http.url, "ws_url": venues.aster_ws_url,
             "accounts": {"mm": aster_account}},
            {"name": "backpack", "kind": "backpack", "symbols": [BACKPACK_SYMBOL],
             "rest_url": venues.backpack_http.url, "ws_url": venues.backpack_ws_url,
             "accounts": {"mm": {"api_key_env": "STEWARD_TEST_BACKPACK_KEY",
                                 "private_key_env": "STEWARD_TEST_BACKPACK_SEED"}}},
        ],
        "risk": {"daily_loss_limit": "1000",
                 "defaults": {"max_order_notional": "1000", "max_position_notional": "2000",
                              "max_open_orders": 10, "price_band_bps": "200"}},
        "strategies": [
            {"name": "mm-aster", "kind": "market_maker",
             "params": {**market_maker, "venue": "aster", "symbol": ASTER_SYMBOL}},
            {"name": "mm-backpack", "kind": "market_maker",
             "params": {**market_maker, "venue": "backpack", "symbol": BACKPACK_SYMBOL}},
        ],
    }
    return msgspec.convert(raw, DaemonConfig, strict=False)


async def move_books(venues: LoopbackVenues, rng: random.Random) -> None:
    """A mean-reverting walk of each venue's mid, one tick of spread, every STEP_S."""
    mids = {"aster": START_PRICE, "backpack": START_PRICE}
    while True:
        venues.backpack.now_ms = wall_ms()  # this simulator's clock is a field, not a function
        for name, mid in mids.items():
            step = Decimal(rng.choice((-3, -2, -1, 0, 1, 2, 3))) * Decimal("2")
            pull = (START_PRICE - mid) / 20
            mid = (mid + step + pull).quantize(Decimal("0.1"))
            mids[name] = mid
            if name == "aster":
                venues.aster.set_book(ASTER_SYMBOL, mid - Decimal("0.1"), mid)
            else:
                venues.backpack.set_top(BACKPACK_SYMBOL, str(mid - Decimal("0.1")), str(mid))
        await trio.sleep(STEP_S)


def aster_maker_fills(venues: LoopbackVenues) -> list[dict[str, Any]]:
    return [t for t in venues.aster.trades[ASTER_SYMBOL] if t["maker"]]


def backpack_maker_fills(venues: LoopbackVenues) -> list[dict[str, Any]]:
    return [f for f in venues.backpack.fills if f.get("isMaker")]


async def wait_for(condition: Callable[[], bool]) -> None:
    """Polled: the simulators announce nothing to a test, and the caller bounds the wait."""
    while True:
        if condition():
            return
        await trio.sleep(STEP_S)


async def wait_for_async(condition: Callable[[], Awaitable[bool]]) -> None:
    while True:
        if await condition():
            return
        await trio.sleep(STEP_S)


async def wait_until_both_trade(venues: LoopbackVenues, fills_each: int) -> None:
    await wait_for(lambda: len(aster_maker_fills(venues)) >= fills_each
                   and len(backpack_maker_fills(venues)) >= fills_each)


def journal_fill_ids(home: Path, config: DaemonConfig, venue: str) -> set[str]:
    store = journal_store(home, config)
    try:
        return {f.fill.fill_id for f in store.fills() if f.fill.venue == venue}
    finally:
        store.close()


def journal_position(home: Path, config: DaemonConfig, venue: str) -> Decimal:
    store = journal_store(home, config)
    try:
        return sum((f.fill.qty * f.fill.side.sign for f in store.fills()
                    if f.fill.venue == venue), Decimal(0))
    finally:
        store.close()


async def run_market_makers(home: Path, venues: LoopbackVenues,
                            config: DaemonConfig) -> RunningDaemon:
    async with trio.open_nursery() as nursery:
        # The market moves before the daemon starts: its feeds are ready at their first books.
        nursery.start_soon(move_books, venues, random.Random(7))
        with trio.fail_after(TRADING_BOUND_S):
            daemon = await trade_until_both_venues_filled(home, venues, config)
        nursery.cancel_scope.cancel()
    return daemon


async def trade_until_both_venues_filled(home: Path, venues: LoopbackVenues,
                                         config: DaemonConfig) -> RunningDaemon:
    async with running_daemon(home, config) as daemon:
        await wait_until_both_trade(venues, fills_each=2)
        # Now a lost answer on each venue: the order is placed, the answer is a 503.
        venues.aster.fail_next(venues.aster_order_path, 503, then_process=True)
        venues.backpack.fail_next(BACKPACK_ORDER_PATH, 503, executed=True)
        await wait_for(lambda: venues.aster.pending_faults(venues.aster_order_path) == 0
                       and venues.backpack.pending_faults(BACKPACK_ORDER_PATH) == 0)
        await wait_until_both_trade(venues, fills_each=4)
        # While the daemon still runs, and with no reconnect since the start-up reconcile
        # (which saw no fills), only the user streams can bring these fills to the journal.
        # (The gateway's stop reconciles again, which would hide a silent stream.)
        aster_ids, backpack_ids = aster_fill_ids(venues), backpack_fill_ids(venues)
        journal = daemon.assembly.journal.journal
        await wait_for_async(lambda: journal_holds(journal, "aster", aster_ids))
        await wait_for_async(lambda: journal_holds(journal, "backpack", backpack_ids))
    return daemon


async def journal_holds(journal: Journal, venue: str, fill_ids: set[str]) -> bool:
    return fill_ids <= {f.fill.fill_id for f in await journal.fills(venue=venue)}


def aster_fill_ids(venues: LoopbackVenues) -> set[str]:
    return {f"{ASTER_SYMBOL}:{t['id']}:{t['orderId']}" for t in venues.aster.trades[ASTER_SYMBOL]}


def backpack_fill_ids(venues: LoopbackVenues) -> set[str]:
    return {f"{f['symbol']}:{f['tradeId']}:{f['orderId']}" for f in venues.backpack.fills}


@pytest.mark.parametrize("aster_scheme", ["hmac", "wallet"])
async def test_daemon_when_configured_with_live_adapters_then_market_makers_trade_on_both_venues(
    steward_home: Path, monkeypatch: pytest.MonkeyPatch, aster_scheme: str
) -> None:
    async with loopback_venues(aster_scheme) as venues:
        for name, value in venues.environ.items():
            monkeypatch.setenv(name, value)
        config = live_config(venues)
        daemon = await run_market_makers(steward_home, venues, config)

        # Traded on both venues, as maker, and every venue fill is in the journal.
        assert len(aster_maker_fills(venues)) >= 4
        assert aster_fill_ids(venues) == journal_fill_ids(steward_home, config, "aster")
        assert len(backpack_maker_fills(venues)) >= 4
        assert backpack_fill_ids(venues) == journal_fill_ids(steward_home, config, "backpack")

        # The 503s were settled by asking the venue: no client id was ever placed twice.
        aster_ids = [o.client_id for o in venues.aster.orders.values()]
        assert len(aster_ids) == len(set(aster_ids))
        backpack_ids = [o["clientId"] for o in venues.backpack.orders.values()]
        assert len(backpack_ids) == len(set(backpack_ids))

        # Aster's dead man's switch was armed for the traded symbol; the stop cancelled
        # every quote on both venues.
        assert venues.aster.countdowns.get(ASTER_SYMBOL, 0) > 0
        assert venues.aster.open_orders_of() == []
        assert [o for o in venues.backpack.orders.values()
                if o["status"] in ("New", "PartiallyFilled")] == []

        # The journal's positions agree with each venue's.
        assert journal_position(steward_home, config, "aster") == venues.aster.positions[
            ASTER_SYMBOL].qty
        backpack_position = venues.backpack.positions.get(BACKPACK_SYMBOL)
        assert journal_position(steward_home, config, "backpack") == (
            backpack_position.qty if backpack_position is not None else 0)
        assert daemon.assembly.live.keys() == {"aster", "backpack"}
        assert venues.aster_http.errors == [] and venues.backpack_http.errors == []

        # Every signed Aster call used the configured scheme's paths; public ones stay V1.
        signed = [r for r in venues.aster.received if "signature" in r.params]
        versions = {r.path.split("/")[2] for r in signed}
        assert versions == ({"v3"} if aster_scheme == "wallet" else {"v1", "v2"})
        assert all(("user" in r.params) == (aster_scheme == "wallet") for r in signed)
