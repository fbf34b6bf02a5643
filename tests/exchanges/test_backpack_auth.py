"""Backpack ED25519 signing (venues.md §2.2, §3.5, §4 pitfalls 7-8)."""

from __future__ import annotations

import base64
import json
import pickle

import httpx
import pytest

import exchanges.backpack as backpack
from exchanges.backpack import (
    INSTRUCTION_EXTENSION,
    BackpackAuth,
    ClientIdMap,
    batch_signing_string,
    public_key_b64,
    sign,
    signing_string,
    uint32_of,
)

# RFC 8032 §7.1 TEST 1
SEED_HEX = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
SEED_B64 = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="
PUB_B64 = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
SIG_EMPTY_HEX = (
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)

CANCEL_STRING = (
    "instruction=orderCancel&orderId=28&symbol=BTC_USDT&timestamp=1614550000000&window=5000"
)
CANCEL_SIG = (
    "wLQaGPszkXrEWaIm6RsnVLJv70Uuw62SXxmdso6cadUm"
    "R0NWzFhfhvuCWMl+jbBNJ5gZRfCPjvXI29H7JeW6Ag=="
)
SUBSCRIBE_STRING = "instruction=subscribe&timestamp=1614550000000&window=5000"
SUBSCRIBE_SIG = (
    "nnH9lOoIF3v72vbmeopqLLUggbPuhAuXgYbQc6qJnYSs"
    "FW0ZM3hUVK4feOAmIHQA02vH16oz+C3+6HQmPkggDA=="
)
BATCH_STRING = (
    "instruction=orderExecute&orderType=Limit&price=141&quantity=12&side=Bid&symbol=SOL_USDC_PERP"
    "&instruction=orderExecute&orderType=Limit&price=140&quantity=11&side=Bid&symbol=SOL_USDC_PERP"
    "&timestamp=1750793021519&window=5000"
)
BATCH_SIG = (
    "vPFtn5Js/Bow3UsENNogoyaEcTqy8fxLH2ASbpAcTSCl"
    "Jf1v4VAj7+61T7IRwMt9kvGvGxhtlXqlvtCzzbFxAQ=="
)
BATCH_ORDERS = [
    {"symbol": "SOL_USDC_PERP", "side": "Bid", "orderType": "Limit", "price": p, "quantity": q}
    for p, q in (("141", "12"), ("140", "11"))
]


def verify(pub_b64: str, message: str, sig_b64: str) -> None:
    from nacl.signing import VerifyKey

    VerifyKey(base64.b64decode(pub_b64)).verify(message.encode(), base64.b64decode(sig_b64))


# --- the primitive -------------------------------------------------------------------------------


def test_public_key_when_rfc8032_test1_seed_then_rfc_public_key():
    assert base64.b64decode(SEED_B64).hex() == SEED_HEX
    assert public_key_b64(SEED_B64) == PUB_B64


def test_sign_when_rfc8032_test1_empty_message_then_rfc_signature():
    assert base64.b64decode(sign(SEED_B64, b"")).hex() == SIG_EMPTY_HEX
    assert sign(SEED_B64, "") == sign(SEED_B64, b"")


@pytest.mark.parametrize(
    ("message", "expected"),
    [(CANCEL_STRING, CANCEL_SIG), (SUBSCRIBE_STRING, SUBSCRIBE_SIG), (BATCH_STRING, BATCH_SIG)],
)
def test_sign_when_self_computed_vectors_then_same_signatures(message: str, expected: str):
    assert sign(SEED_B64, message) == expected
    verify(PUB_B64, message, expected)


@pytest.mark.parametrize("bad", ["not base64!", base64.b64encode(b"x" * 31).decode(), ""])
def test_sign_when_seed_malformed_then_value_error_without_secret(bad: str):
    with pytest.raises(ValueError) as info:
        sign(bad, "m")
    assert (bad == "" or bad not in str(info.value)) and info.value.__cause__ is None


# --- signing strings -----------------------------------------------------------------------------


def test_signing_string_when_doc_cancel_example_then_exact():
    body = {"orderId": 28, "symbol": "BTC_USDT"}
    assert signing_string("orderCancel", body, 1614550000000, 5000) == CANCEL_STRING


def test_signing_string_when_no_params_then_instruction_timestamp_window_only():
    assert signing_string("subscribe", {}, 1614550000000) == SUBSCRIBE_STRING


def test_signing_string_when_keys_unsorted_then_sorted_and_booleans_lowercase():
    body = {
        "symbol": "SOL_USDC_PERP", "side": "Bid", "orderType": "Limit", "price": "141",
        "quantity": "12", "timeInForce": "GTC", "postOnly": True, "clientId": 42,
        "reduceOnly": False,
    }
    assert signing_string("orderExecute", body, 1700000000000) == (
        "instruction=orderExecute&clientId=42&orderType=Limit&postOnly=true&price=141"
        "&quantity=12&reduceOnly=false&side=Bid&symbol=SOL_USDC_PERP&timeInForce=GTC"
        "&timestamp=1700000000000&window=5000"
    )


def test_signing_string_when_decimal_string_then_signed_verbatim():
    s = signing_string("orderExecute", {"price": "1.50", "quantity": "0.0100"}, 1, 5000)
    assert "&price=1.50&quantity=0.0100&" in s


@pytest.mark.parametrize("value", [1.5, None, [1], {"a": 1}])
def test_signing_string_when_ambiguous_value_then_type_error(value: object):
    with pytest.raises(TypeError):
        signing_string("orderExecute", {"price": value}, 1, 5000)


def test_signing_string_when_decimal_object_then_type_error():
    from decimal import Decimal

    with pytest.raises(TypeError):
        signing_string("orderExecute", {"price": Decimal("1.50")}, 1, 5000)


@pytest.mark.parametrize("window", [0, 60001, -1])
def test_signing_string_when_window_out_of_range_then_value_error(window: int):
    with pytest.raises(ValueError):
        signing_string("orderQuery", {}, 1, window)


def test_batch_signing_string_when_doc_example_then_exact():
    assert batch_signing_string("orderExecute", BATCH_ORDERS, 1750793021519, 5000) == BATCH_STRING


def test_batch_signing_string_when_empty_then_value_error():
    with pytest.raises(ValueError):
        batch_signing_string("orderExecute", [], 1, 5000)


# --- httpx.Auth ----------------------------------------------------------------------------------


def make_auth(**kwargs: object) -> BackpackAuth:
    return BackpackAuth(PUB_B64, SEED_B64, clock=lambda: 1614550000000, **kwargs)  # type: ignore[arg-type]


def run(auth: BackpackAuth, method: str, url: str, **kwargs: object) -> httpx.Request:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    with httpx.Client(transport=httpx.MockTransport(handler), auth=auth) as client:
        client.request(method, url, **kwargs)  # type: ignore[arg-type]
    (request,) = seen
    return request


def test_auth_when_cancel_body_then_doc_headers():
    request = run(
        make_auth(), "DELETE", "https://api.backpack.exchange/api/v1/order",
        json={"orderId": 28, "symbol": "BTC_USDT"},
    )
    assert request.headers["X-API-Key"] == PUB_B64
    assert request.headers["X-Timestamp"] == "1614550000000"
    assert request.headers["X-Window"] == "5000"
    assert request.headers["X-Signature"] == CANCEL_SIG


def test_auth_when_order_body_then_signed_decimals_equal_sent_decimals():
    body = {
        "symbol": "SOL_USDC_PERP", "side": "Bid", "orderType": "Limit", "price": "141.50",
        "quantity": "0.0100", "postOnly": True, "clientId": 4294967295,
    }
    auth = make_auth()
    request = run(auth, "POST", "https://api.backpack.exchange/api/v1/order", json=body)
    sent = json.loads(request.content)
    assert sent["price"] == "141.50" and sent["quantity"] == "0.0100"
    expected = signing_string("orderExecute", body, 1614550000000, 5000)
    assert "&clientId=4294967295&" in expected and "&postOnly=true&" in expected
    assert "&price=141.50&quantity=0.0100&" in expected
    assert auth.signing_string_for(request, 1614550000000) == expected
    verify(PUB_B64, expected, request.headers["X-Signature"])


def test_auth_when_json_number_then_signed_as_its_token_text():
    content = b'{"symbol":"SOL_USDC","price":1.50,"clientId":42}'
    request = run(
        make_auth(), "POST", "https://api.backpack.exchange/api/v1/order", content=content,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    verify(
        PUB_B64,
        "instruction=orderExecute&clientId=42&price=1.50&symbol=SOL_USDC"
        "&timestamp=1614550000000&window=5000",
        request.headers["X-Signature"],
    )


def test_auth_when_batch_to_orders_then_batch_rule_signature():
    request = run(
        make_auth(), "POST", "https://api.backpack.exchange/api/v1/orders", json=BATCH_ORDERS
    )
    verify(
        PUB_B64, BATCH_STRING.replace("1750793021519", "1614550000000"),
        request.headers["X-Signature"],
    )


def test_auth_when_query_params_then_sorted_query_signed():
    auth = make_auth(window_ms=60000)
    request = run(
        auth, "GET", "https://api.backpack.exchange/wapi/v1/history/fills",
        params={"symbol": "ETH_USDC", "fillType": "User"},
    )
    assert request.headers["X-Window"] == "60000"
    verify(
        PUB_B64,
        "instruction=fillHistoryQueryAll&fillType=User&symbol=ETH_USDC"
        "&timestamp=1614550000000&window=60000",
        request.headers["X-Signature"],
    )


def test_auth_when_explicit_instruction_extension_then_used():
    request = run(
        make_auth(), "GET", "https://api.backpack.exchange/ws-auth",
        extensions={INSTRUCTION_EXTENSION: "subscribe"},
    )
    assert request.headers["X-Signature"] == SUBSCRIBE_SIG


def test_auth_when_instruction_for_given_then_used():
    request = run(
        make_auth(instruction_for=lambda r: "subscribe"), "GET", "https://x.invalid/anything"
    )
    assert request.headers["X-Signature"] == SUBSCRIBE_SIG


def test_auth_when_unknown_endpoint_then_value_error():
    with pytest.raises(ValueError, match="no Backpack instruction"):
        run(make_auth(), "GET", "https://api.backpack.exchange/api/v1/nope")


async def test_auth_when_async_client_then_same_headers():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=dict(request.headers))

    transport = httpx.MockTransport(handler)
    async with httpx.AsyncClient(transport=transport, auth=make_auth()) as client:
        response = await client.request(
            "DELETE", "https://api.backpack.exchange/api/v1/order",
            json={"orderId": 28, "symbol": "BTC_USDT"},
        )
    assert response.json()["x-signature"] == CANCEL_SIG


def test_auth_when_api_key_mismatch_then_value_error_without_keys():
    other = base64.b64encode(b"\x01" * 32).decode()
    with pytest.raises(ValueError) as info:
        BackpackAuth(other, SEED_B64)
    assert other not in str(info.value) and SEED_B64 not in str(info.value)


def test_auth_when_shown_then_no_key_material_anywhere():
    auth = make_auth()
    texts = [repr(auth), str(auth), repr(vars(auth)), repr(auth._credentials)]
    for text in texts:
        for secret in (SEED_B64, PUB_B64, SEED_HEX, SEED_HEX[:16], PUB_B64[:12]):
            assert secret not in text
    with pytest.raises(TypeError):
        pickle.dumps(auth)


# --- client ids ----------------------------------------------------------------------------------


def test_client_id_map_when_mapped_then_uint32_reversible_and_stable():
    ids = ClientIdMap()
    number = ids.to_uint32("mm-BTC-000123")
    assert 0 <= number < 2**32 and number == uint32_of("mm-BTC-000123")
    assert ids.to_uint32("mm-BTC-000123") == number
    assert ids.to_client_id(number) == "mm-BTC-000123"
    assert ids.to_client_id((number + 1) % 2**32) is None


def test_client_id_map_when_collision_then_probed_to_distinct_number(monkeypatch):
    import exchanges.backpack._client_ids as module

    monkeypatch.setattr(module, "uint32_of", lambda _id: 2**32 - 1)
    ids = ClientIdMap()
    a, b = ids.to_uint32("a"), ids.to_uint32("b")
    assert (a, b) == (2**32 - 1, 0)
    assert ids.to_client_id(a) == "a" and ids.to_client_id(b) == "b"


def test_client_id_map_when_full_then_least_recent_evicted():
    ids = ClientIdMap(capacity=2)
    first = ids.to_uint32("first")
    ids.to_uint32("second")
    ids.to_uint32("first")  # refresh
    ids.to_uint32("third")
    assert len(ids) == 2 and ids.to_client_id(first) == "first"
    assert ids.to_client_id(uint32_of("second")) is None


def test_exports_when_read_then_sorted_and_complete():
    exported = list(backpack.__all__)
    assert exported == sorted(exported, key=lambda n: (not n.isupper(), n))
    public = {
        n for n, v in vars(backpack).items()
        if not n.startswith("_") and not isinstance(v, type(backpack))
    } - {"annotations"}
    assert set(exported) == public
