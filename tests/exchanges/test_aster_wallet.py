"""Aster V3 API-wallet auth end to end in the adapter: `AsterAccount` over `AsterRest` with
`AsterWalletAuth` sends every signed call to `/fapi/v3/<name>` (venues.md §1.6: "V3 uses the
same names under `/fapi/v3/`"), and the simulator verifies the EIP-712 signature with
eth-account, independently of `exchanges.aster._signing` (§1.4).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

import httpx
import pytest
import trio
from eth_account import Account

from exchanges import (
    Fill,
    Instrument,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    VenueAuthError,
    VenueOrder,
    VenueRejectedError,
)
from exchanges.aster import AsterAccount, AsterHmacAuth, AsterRest, AsterWalletAuth
from exchanges.aster._rest import signed_path

from .aster_sim import (
    DUPLICATE_NONCE,
    NONCE_EXPIRED,
    V3_NONCES_KEPT,
    AsterSimulator,
    open_aster_ws,
)

T0_MS = 1_760_000_000_000
BTC = Instrument(venue="aster", symbol="BTCUSDT", base="BTC", quote="USDT",
                 tick_size=Decimal("0.1"), step_size=Decimal("0.001"), min_qty=Decimal("0.001"),
                 min_notional=Decimal(5))
BOUND_S = 2
BASE_URL = "https://fapi.test"


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@dataclass
class Venue:
    sim: AsterSimulator
    rest: AsterRest
    account: AsterAccount
    clock: Clock
    user: str
    signer: str
    key: str


def wallet() -> tuple[str, str]:
    """(address, private key hex) of a fresh secp256k1 key."""
    account = Account.create()
    return account.address, account.key.hex()


def make_venue(*, auth_key: str | None = None, auth_signer: str | None = None,
               skew_ms: int = 0) -> Venue:
    """A sim with a V3 account (and a V1 one, unused) and a wallet-auth adapter on it.
    `auth_key`/`auth_signer` override the adapter's wallet; `skew_ms` puts the sim's clock
    ahead of the adapter's."""
    user, _ = wallet()
    signer, key = wallet()
    clock = Clock(T0_MS)
    sim = AsterSimulator(api_key=os.urandom(32).hex(), secret=os.urandom(32).hex(),
                         instruments=[BTC], clock_ms=lambda: clock() + skew_ms,
                         wallet_user=user, wallet_signer=signer)
    sim.set_book("BTCUSDT", Decimal("60000.0"), Decimal("60000.1"))
    auth = AsterWalletAuth(user, auth_signer or signer, auth_key or key,
                           clock_us=lambda: clock() * 1000)
    rest = AsterRest(auth, base_url=BASE_URL, transport=httpx.MockTransport(sim.handle),
                     clock_ms=clock)
    return Venue(sim, rest, AsterAccount(rest, account="main", symbols=["BTCUSDT"]), clock,
                 user, signer, key)


@asynccontextmanager
async def open_venue(*, auth_key: str | None = None, auth_signer: str | None = None,
                     skew_ms: int = 0) -> AsyncIterator[Venue]:
    venue = make_venue(auth_key=auth_key, auth_signer=auth_signer, skew_ms=skew_ms)
    async with venue.rest:
        yield venue


def limit(client_id: str, side: Side, qty: str, price: str, *,
          tif: TimeInForce = TimeInForce.GTC) -> OrderRequest:
    return OrderRequest(client_id=client_id, symbol="BTCUSDT", side=side,
                        order_type=OrderType.LIMIT, qty=Decimal(qty), price=Decimal(price),
                        tif=tif)


def paths(sim: AsterSimulator) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in sim.received]


def error_body(error: tuple[int, int, str]) -> dict[str, object]:
    return {"code": error[1], "msg": error[2]}


# ---------------------------------------------------------------------------------------------
# The path mapping


@pytest.mark.parametrize(("path", "v3"), [
    ("/fapi/v1/order", "/fapi/v3/order"),
    ("/fapi/v1/openOrders", "/fapi/v3/openOrders"),
    ("/fapi/v1/allOpenOrders", "/fapi/v3/allOpenOrders"),
    ("/fapi/v1/countdownCancelAll", "/fapi/v3/countdownCancelAll"),
    ("/fapi/v1/userTrades", "/fapi/v3/userTrades"),
    ("/fapi/v1/listenKey", "/fapi/v3/listenKey"),
    ("/fapi/v2/positionRisk", "/fapi/v3/positionRisk"),
    ("/fapi/v2/balance", "/fapi/v3/balance"),
    ("/fapi/v3/order", "/fapi/v3/order"),
    ("/fapi/v4/account", "/fapi/v4/account"),
    ("/api/v1/order", "/api/v1/order"),
])
def test_signed_path_when_wallet_auth_then_v1_v2_names_under_v3_and_hmac_unchanged(
        path: str, v3: str) -> None:
    signer, key = wallet()
    user, _ = wallet()
    assert signed_path(path, AsterWalletAuth(user, signer, key)) == v3
    assert signed_path(path, AsterHmacAuth("k", "s")) == path
    assert signed_path(path, None) == path


# ---------------------------------------------------------------------------------------------
# Trading over V3


async def test_wallet_account_when_trading_then_every_signed_call_goes_to_v3_and_is_accepted():
    with trio.fail_after(BOUND_S):
        async with open_venue() as v:
            await v.rest.sync_clock()
            resting = await v.account.place_order(limit("mm-1", Side.BUY, "0.010", "59000.0"))
            got = await v.account.get_order("BTCUSDT", "mm-1")
            [listed] = await v.account.open_orders("BTCUSDT")
            cancelled = await v.account.cancel_order("BTCUSDT", "mm-1")
            taken = await v.account.place_order(
                limit("take-1", Side.BUY, "0.002", "60000.1", tif=TimeInForce.IOC))
            await v.account.place_order(limit("mm-2", Side.SELL, "0.001", "61000.0"))
            [position] = await v.account.positions()
            [balance] = await v.account.balances()
            [fill] = await v.account.fills(since_ns=0)
            await v.account.arm_cancel_all_after("BTCUSDT", 120_000)
            await v.account.cancel_all("BTCUSDT")
    assert resting.status is OrderStatus.OPEN and got.client_id == listed.client_id == "mm-1"
    assert cancelled.status is OrderStatus.CANCELLED
    assert taken.status is OrderStatus.FILLED
    assert position.qty == Decimal("0.002")
    assert balance.asset == "USDT"
    assert (fill.client_id, fill.qty) == ("take-1", Decimal("0.002"))
    assert v.sim.countdowns == {"BTCUSDT": 120_000}
    assert v.sim.open_orders_of() == []
    # The public clock call stays V1; every signed one went to /fapi/v3 with V3 parameters.
    assert paths(v.sim)[0] == ("GET", "/fapi/v1/time")
    signed = v.sim.received[1:]
    assert {(r.method, r.path) for r in signed} == {
        ("POST", "/fapi/v3/order"), ("GET", "/fapi/v3/order"), ("GET", "/fapi/v3/openOrders"),
        ("DELETE", "/fapi/v3/order"), ("GET", "/fapi/v3/positionRisk"),
        ("GET", "/fapi/v3/balance"), ("GET", "/fapi/v3/userTrades"),
        ("POST", "/fapi/v3/countdownCancelAll"), ("DELETE", "/fapi/v3/allOpenOrders")}
    for request in signed:
        assert (request.params["user"], request.params["signer"]) == (v.user, v.signer)
        assert "timestamp" not in request.params  # V3 uses the µs nonce instead
        assert (request.body or request.query).rsplit("&", 1)[1].startswith("signature=0x")
    nonces = [int(r.params["nonce"]) for r in signed]
    assert nonces == sorted(set(nonces))  # strictly increasing, none reused


async def test_wallet_user_stream_when_order_placed_then_listen_key_on_v3_and_events_arrive():
    with trio.fail_after(BOUND_S):
        async with open_venue() as v, open_aster_ws(v.sim) as url:
            v.account._ws_url = url
            v.account.keepalive_interval_s = 0.02
            async with v.account.stream_user() as events:
                await v.account.place_order(
                    limit("take-1", Side.BUY, "0.001", "60000.1", tif=TimeInForce.IOC))
                opened, fill, filled = [await events.__anext__() for _ in range(3)]
                await v.sim.wait_listen_key_extensions(1)
    assert isinstance(opened, VenueOrder) and isinstance(filled, VenueOrder)
    assert isinstance(fill, Fill) and fill.client_id == "take-1"
    assert filled.status is OrderStatus.FILLED
    assert ("POST", "/fapi/v3/listenKey") in paths(v.sim)
    assert ("PUT", "/fapi/v3/listenKey") in paths(v.sim)
    assert not [p for p in paths(v.sim) if p[1].startswith(("/fapi/v1/listenKey",
                                                            "/fapi/v2/"))]


# ---------------------------------------------------------------------------------------------
# Refusals


async def test_wallet_auth_when_signed_by_another_wallet_then_auth_error():
    other_signer, other_key = wallet()
    with trio.fail_after(BOUND_S):
        async with open_venue(auth_key=other_key, auth_signer=other_signer) as v:
            with pytest.raises(VenueAuthError):
                await v.account.open_orders("BTCUSDT")
            with pytest.raises(VenueAuthError):
                await v.account.place_order(limit("mm-1", Side.BUY, "0.010", "59000.0"))
    assert v.sim.orders == {}


def signed_query(v: Venue, params: list[tuple[str, str]], *, key: str, nonce: int) -> str:
    """A V3 query signed here with eth-account (not the adapter), claiming the sim's signer."""
    from eth_account.messages import encode_typed_data

    msg = urlencode([*params, ("user", v.user), ("signer", v.signer), ("nonce", str(nonce))])
    typed = {"types": {"EIP712Domain": [{"name": "name", "type": "string"},
                                        {"name": "version", "type": "string"},
                                        {"name": "chainId", "type": "uint256"},
                                        {"name": "verifyingContract", "type": "address"}],
                       "Message": [{"name": "msg", "type": "string"}]},
             "primaryType": "Message",
             "domain": {"name": "AsterSignTransaction", "version": "1", "chainId": 1666,
                        "verifyingContract": "0x" + "0" * 40},
             "message": {"msg": msg}}
    signature = Account.sign_message(encode_typed_data(full_message=typed), key).signature
    return f"{msg}&signature=0x{bytes(signature).hex()}"


def test_sim_when_signer_claimed_but_signed_by_other_key_or_tampered_then_refused():
    v = make_venue()
    nonce = T0_MS * 1000
    good = signed_query(v, [("symbol", "BTCUSDT")], key=v.key, nonce=nonce)
    ok = v.sim.handle(httpx.Request("GET", f"{BASE_URL}/fapi/v3/openOrders?{good}"))
    assert ok.status_code == 200, ok.text
    _, other_key = wallet()
    forged = signed_query(v, [("symbol", "BTCUSDT")], key=other_key, nonce=nonce + 1)
    tampered = good.replace("symbol=BTCUSDT", "symbol=ETHUSDT")
    for query in (forged, tampered):
        answer = v.sim.handle(httpx.Request("GET", f"{BASE_URL}/fapi/v3/openOrders?{query}"))
        assert (answer.status_code, answer.json()["code"]) == (400, -1022)


async def test_wallet_auth_when_request_replayed_then_duplicate_nonce_refused():
    with trio.fail_after(BOUND_S):
        async with open_venue() as v:
            await v.account.open_orders("BTCUSDT")
            sent = v.sim.received[-1]
            replay = v.sim.handle(httpx.Request("GET", f"{BASE_URL}{sent.path}?{sent.query}"))
    assert replay.status_code == 400 and replay.json() == error_body(DUPLICATE_NONCE)


async def test_wallet_auth_when_nonce_more_than_10s_old_or_ahead_then_nonce_expired():
    for skew_ms in (10_001, -10_001):
        with trio.fail_after(BOUND_S):
            async with open_venue(skew_ms=skew_ms) as v:
                with pytest.raises(VenueRejectedError, match="Nonce Expired"):
                    await v.account.open_orders("BTCUSDT")
    with trio.fail_after(BOUND_S):
        async with open_venue(skew_ms=10_001) as v:
            await v.rest.sync_clock()  # the offset moves the nonce onto the venue's clock
            assert await v.account.open_orders("BTCUSDT") == []
    async with open_venue(skew_ms=10_000) as v:
        assert await v.account.open_orders("BTCUSDT") == []  # exactly 10 s: accepted


async def test_wallet_auth_when_100_nonces_kept_then_lower_new_nonce_expired():
    with trio.fail_after(BOUND_S):
        async with open_venue() as v:
            for _ in range(V3_NONCES_KEPT):  # the clock stands still: nonces T0, T0+1, ...
                await v.account.open_orders("BTCUSDT")
            below = signed_query(v, [], key=v.key, nonce=T0_MS * 1000 - 1)
            answer = v.sim.handle(httpx.Request("GET", f"{BASE_URL}/fapi/v3/openOrders?{below}"))
            above = signed_query(v, [], key=v.key, nonce=T0_MS * 1000 + V3_NONCES_KEPT)
            fresh = v.sim.handle(httpx.Request("GET", f"{BASE_URL}/fapi/v3/openOrders?{above}"))
    assert answer.json() == error_body(NONCE_EXPIRED)
    assert fresh.status_code == 200


async def test_sim_when_scheme_and_path_version_disagree_then_auth_error():
    v = make_venue()
    async with v.rest:
        # V3 signing on a V1 path: no API-key header, refused (-2015, HTTP 401).
        async with httpx.AsyncClient(base_url=BASE_URL,
                                     transport=httpx.MockTransport(v.sim.handle)) as client:
            assert v.rest.auth is not None
            answer = await client.get("/fapi/v1/openOrders", params={"symbol": "BTCUSDT"},
                                      auth=v.rest.auth)
        assert (answer.status_code, answer.json()["code"]) == (401, -2015)
        # V1 HMAC on a V3 path (valid V1 credentials): refused as a bad signature.
        api_key, secret = v.sim._api_key, v.sim._secret
        async with AsterRest(AsterHmacAuth(api_key, secret, clock=v.clock), base_url=BASE_URL,
                             transport=httpx.MockTransport(v.sim.handle)) as hmac_rest:
            with pytest.raises(VenueAuthError):
                await hmac_rest.signed("GET", "/fapi/v3/openOrders", [("symbol", "BTCUSDT")])
            assert await hmac_rest.signed("GET", "/fapi/v1/openOrders") == b"[]"


# ---------------------------------------------------------------------------------------------
# HMAC unchanged


async def test_hmac_account_when_trading_then_v1_and_v2_paths_as_before():
    api_key, secret = os.urandom(32).hex(), os.urandom(32).hex()
    clock = Clock(T0_MS)
    sim = AsterSimulator(api_key=api_key, secret=secret, instruments=[BTC], clock_ms=clock)
    sim.set_book("BTCUSDT", Decimal("60000.0"), Decimal("60000.1"))
    async with AsterRest(AsterHmacAuth(api_key, secret, clock=clock), base_url=BASE_URL,
                         transport=httpx.MockTransport(sim.handle), clock_ms=clock) as rest:
        account = AsterAccount(rest, account="main", symbols=["BTCUSDT"])
        await account.place_order(limit("mm-1", Side.BUY, "0.010", "59000.0"))
        await account.cancel_order("BTCUSDT", "mm-1")
        await account.positions()
        await account.balances()
        await rest.new_listen_key()
    assert paths(sim) == [("POST", "/fapi/v1/order"), ("DELETE", "/fapi/v1/order"),
                          ("GET", "/fapi/v2/positionRisk"), ("GET", "/fapi/v2/balance"),
                          ("POST", "/fapi/v1/listenKey")]
    assert all("user" not in r.params and "timestamp" in r.params for r in sim.received)
