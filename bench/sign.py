"""`sign`: the cost of signing one order request per venue scheme, beside the bare primitive.

Each figure runs the real `httpx.Auth` flow on an order-placement request built the way an
adapter builds it (form body for Aster, JSON body for Backpack): parameter assembly, the
signature, headers and the rebuilt request. Its floor is the cryptographic primitive alone
over a payload of the same size (for EIP-712, the ECDSA over a ready digest), measured in the
same run. Building the httpx.Request is timed alone too, since it is httpx's cost and is paid
by unsigned requests as well; signing's share is build-and-sign minus build-only. Keys are
generated fresh for the run. `hmac_*` is Aster V1, `eip712_*` Aster V3, `ed25519_*` Backpack;
`*_per_s` is whole signed requests (build and sign) per second on one core.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections.abc import Callable
from typing import Any, Final

import httpx
from eth_account import Account
from nacl.signing import SigningKey

from exchanges.aster import AsterHmacAuth, AsterWalletAuth, eip712_digest
from exchanges.aster._signing import private_key_of
from exchanges.backpack import BackpackAuth

from ._stats import percentile_us

SAMPLES: Final = 2_000
WARMUP: Final = 200
ASTER_ORDER: Final = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                      "timeInForce": "GTX", "quantity": "0.010", "price": "64250.5",
                      "newClientOrderId": "stw-mm-btc-000001"}
BACKPACK_ORDER: Final = {"symbol": "BTC_USDC_PERP", "side": "Bid", "orderType": "Limit",
                         "timeInForce": "GTC", "quantity": "0.010", "price": "64250.5",
                         "postOnly": True, "clientId": 123456}


def _time_us(action: Callable[[], object], samples: int) -> dict[str, float]:
    for _ in range(min(WARMUP, samples)):
        action()
    durations_ns = []
    for _ in range(samples):
        start_ns = time.perf_counter_ns()
        action()
        durations_ns.append(time.perf_counter_ns() - start_ns)
    return {"p50_us": percentile_us(durations_ns, 0.50),
            "p99_us": percentile_us(durations_ns, 0.99),
            "per_s": round(samples * 1e9 / sum(durations_ns))}


def _through(auth: httpx.Auth, build: Callable[[], httpx.Request]) -> Callable[[], object]:
    def run() -> object:
        return next(auth.sync_auth_flow(build()))
    return run


def _compare(name: str, auth: httpx.Auth, build: Callable[[], httpx.Request],
             primitive: Callable[[], object], samples: int) -> dict[str, Any]:
    """Build + sign, build alone, and the primitive alone: signing's share is the difference
    of the first two, and its floor is the third."""
    full = _time_us(_through(auth, build), samples)
    built = _time_us(build, samples)
    floor = _time_us(primitive, samples)
    signing_p50_us = round(full["p50_us"] - built["p50_us"], 2)
    return {f"{name}_per_s": full["per_s"], f"{name}_build_and_sign": full,
            f"{name}_build_only": built,
            f"{name}_signing_p50_us": signing_p50_us, f"{name}_primitive_floor": floor,
            f"{name}_signing_vs_floor": round(signing_p50_us / floor["p50_us"], 2)}


def _hmac() -> dict[str, Any]:
    secret = os.urandom(32).hex()
    auth = AsterHmacAuth(os.urandom(32).hex(), secret)
    build = lambda: httpx.Request("POST", "https://fapi.asterdex.com/fapi/v1/order",  # noqa: E731
                                  data=ASTER_ORDER)
    payload = (httpx.QueryParams(ASTER_ORDER).__str__()
               + "&recvWindow=5000&timestamp=1700000000000").encode()
    key = secret.encode()
    return _compare("hmac", auth, build,
                    lambda: hmac.new(key, payload, hashlib.sha256).hexdigest(), SAMPLES)


def _eip712() -> dict[str, Any]:
    signer = Account.create()
    auth = AsterWalletAuth(Account.create().address, signer.address, signer.key.hex())
    build = lambda: httpx.Request("POST", "https://fapi3.asterdex.com/fapi/v3/order",  # noqa: E731
                                  data=ASTER_ORDER)
    message = str(httpx.QueryParams(ASTER_ORDER)) + "&user=0x0&signer=0x0&nonce=1700000000000000"
    key = private_key_of(signer.key)
    digest = eip712_digest(message)
    return _compare("eip712", auth, build, lambda: key.sign_msg_hash(digest), SAMPLES)


def _ed25519() -> dict[str, Any]:
    key = SigningKey.generate()
    seed_b64 = base64.b64encode(bytes(key)).decode()
    auth = BackpackAuth(base64.b64encode(bytes(key.verify_key)).decode(), seed_b64)
    build = lambda: httpx.Request("POST", "https://api.backpack.exchange/api/v1/order",  # noqa: E731
                                  json=BACKPACK_ORDER)
    message = ("instruction=orderExecute&" + "&".join(
        f"{k}={v}" for k, v in sorted(BACKPACK_ORDER.items())) + "&timestamp=1700000000000"
        "&window=5000").encode()
    return _compare("ed25519", auth, build, lambda: key.sign(message).signature, SAMPLES)


async def run_sign() -> dict[str, Any]:
    """Signing is synchronous CPU work; the async signature fits the bench runner."""
    return {**_hmac(), **_ed25519(), **_eip712()}
