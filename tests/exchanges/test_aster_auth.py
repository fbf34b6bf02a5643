"""Aster signing: the published vectors (venues.md §3.1–3.4) and the httpx.Auth flows."""

from __future__ import annotations

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from exchanges import VenueAuthError
from exchanges.aster import (
    AsterHmacAuth,
    AsterWalletAuth,
    auth_from_env,
    eip712_signature,
    eip712_typed_data,
    hmac_payload,
    hmac_signature,
)
from exchanges.aster._signing import legacy_v3_hash, legacy_v3_signature

# §3.1 Aster futures V1 doc example
AF_KEY = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83"
AF_SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
AF_TS = 1591702613943
AF_QUERY_ONLY = ("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC"
                 f"&recvWindow=5000&timestamp={AF_TS}")
AF_QUERY_ONLY_SIG = "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
AF_MIXED_QUERY = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC"
AF_MIXED_BODY = f"quantity=1&price=9000&recvWindow=5000&timestamp={AF_TS}"
AF_MIXED_SIG = "30baaf0fab549bbeda7f5ef201898b34122da25fd23c646cac2c529aebe670a4"

# §3.4 (superseded V3 draft): also the key pair for the current-scheme tests
USER = "0x63DD5aCC6b1aa0f563956C0e534DD30B6dcF7C4e"
SIGNER = "0x21cF8Ae13Bb72632562c6Fff438652Ba1a151bb0"
PRIVATE_KEY = "0x4fd0a42218f3eae43a6ce26d22544e986139a01e5b34a62db53757ffca81bae1"
NONCE = 1748310859508867

SECRETS = [AF_KEY, AF_SECRET, PRIVATE_KEY, PRIVATE_KEY.removeprefix("0x")]


def capture(auth: httpx.Auth) -> tuple[httpx.Client, list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={})

    client = httpx.Client(base_url="https://fapi.asterdex.com", auth=auth,
                          transport=httpx.MockTransport(handler))
    return client, sent


def recovered_signer(msg: str, signature: str) -> str:
    signable = encode_typed_data(full_message=eip712_typed_data(msg))
    return str(Account.recover_message(signable, signature=signature))


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret.lower() not in text.lower()


# --- pure signing: published vectors ----------------------------------------------------------

def test_hmac_signature_when_futures_doc_example_then_matches_published():
    assert hmac_signature(AF_SECRET, AF_QUERY_ONLY) == AF_QUERY_ONLY_SIG


def test_hmac_payload_when_query_and_body_then_concatenated_without_ampersand():
    payload = hmac_payload(AF_MIXED_QUERY, AF_MIXED_BODY)
    assert payload == AF_MIXED_QUERY + AF_MIXED_BODY
    assert "timeInForce=GTCquantity=1" in payload
    # the doc's Example 3 prints the query-only signature: that is the doc bug (§3.1)
    assert hmac_signature(AF_SECRET, payload) == AF_MIXED_SIG != AF_QUERY_ONLY_SIG


def test_hmac_signature_when_spot_doc_example_then_matches_published():
    secret = "fdde510a2b71fa43a43bff3e3cf7819c8c66df34633d338050f4f59664b3b313"
    msg = ("symbol=BNBUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=5&price=1.1"
           "&recvWindow=5000&timestamp=1756187806000")
    assert hmac_signature(secret, msg) == (
        "e09169bf6c02ec4b29fa1bdc3a967f92c8c6cfcde0551ba1d477b2d3cf4c51b0")


def test_hmac_signature_when_binance_vectors_then_both_match():
    secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
    query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
    body = "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    assert hmac_signature(secret, f"{query}&{body}") == (
        "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71")
    assert hmac_signature(secret, hmac_payload(query, body)) == (
        "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77")


def test_legacy_v3_when_draft_vector_then_hash_and_personal_sign_match():
    json_params = ('{"positionSide":"BOTH","price":"0.28694","quantity":"190","recvWindow":"50000",'
                   '"side":"BUY","symbol":"SANDUSDT","timeInForce":"GTC",'
                   '"timestamp":"1749545309665","type":"LIMIT"}')
    digest = legacy_v3_hash(json_params, USER, SIGNER, NONCE)
    assert digest.hex() == "9e0273fc91323f5cdbcb00c358be3dee2854afb2d3e4c68497364a2f27a377fc"
    assert legacy_v3_signature(PRIVATE_KEY, digest) == (
        "0x0337dd720a21543b80ff861cd3c26646b75b3a6a4b5d45805d4c1d6ad6fc33e65f0722778dd97525466560"
        "c69fbddbe6874eb4ed6f5fa7e576e486d9b5da67f31b")
    assert Account.from_key(PRIVATE_KEY).address == SIGNER


# --- pure signing: current V3 EIP-712 scheme (no published vector) -----------------------------

def test_eip712_typed_data_when_built_then_domain_and_type_as_documented():
    data = eip712_typed_data("a=1")
    assert data["domain"] == {"name": "AsterSignTransaction", "version": "1", "chainId": 1666,
                              "verifyingContract": "0x" + "0" * 40}
    assert data["primaryType"] == "Message"
    assert data["types"]["Message"] == [{"name": "msg", "type": "string"}]
    assert data["message"] == {"msg": "a=1"}


def test_eip712_signature_when_signed_then_recovers_to_signer_and_is_stable():
    msg = (f"symbol=SANDUSDT&side=BUY&type=LIMIT&quantity=190&price=0.28694&timeInForce=GTC"
           f"&user={USER}&signer={SIGNER}&nonce={NONCE}")
    signature = eip712_signature(PRIVATE_KEY, msg)
    assert recovered_signer(msg, signature) == SIGNER
    # self-computed regression value (RFC 6979 makes it deterministic); not a published vector
    assert signature == (
        "0x64bf715d7bc22b2c9da5a19003801a7da89bb6f2a46c26f551b9744d98e2e00510013ab1775d40e463a72c"
        "53aba8c317239d7b5c43853307d51b6b97714904f51c")
    assert recovered_signer(msg + "&x=1", signature) != SIGNER


@pytest.mark.parametrize("chain_id", [1666, 714])
@pytest.mark.parametrize("msg", ["", "a=1", "symbol=BTCUSDT&price=64250.5&note=caf\u00e9 %26"])
def test_eip712_signature_when_fast_path_then_equals_generic_typed_data_encoding(
        msg: str, chain_id: int):
    generic = Account.sign_message(encode_typed_data(full_message=eip712_typed_data(msg, chain_id)),
                                   private_key=PRIVATE_KEY)
    assert eip712_signature(PRIVATE_KEY, msg, chain_id) == "0x" + bytes(generic.signature).hex()


def test_eip712_signature_when_testnet_chain_then_differs_from_mainnet():
    assert eip712_signature(PRIVATE_KEY, "a=1", 714) != eip712_signature(PRIVATE_KEY, "a=1")


# --- httpx.Auth flows -------------------------------------------------------------------------

def test_hmac_auth_when_get_with_fixed_clock_then_query_matches_doc_vector():
    client, sent = capture(AsterHmacAuth(AF_KEY, AF_SECRET, clock=lambda: AF_TS))
    client.get("/fapi/v1/order", params={"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                         "quantity": "1", "price": "9000", "timeInForce": "GTC"})
    (request,) = sent
    assert request.url.query.decode() == f"{AF_QUERY_ONLY}&signature={AF_QUERY_ONLY_SIG}"
    assert request.headers["X-MBX-APIKEY"] == AF_KEY


def test_hmac_auth_when_query_and_form_body_then_signs_concatenation_in_body():
    auth = AsterHmacAuth(AF_KEY, AF_SECRET, clock=lambda: AF_TS - 250, offset_ms=250)
    client, sent = capture(auth)
    client.post(f"/fapi/v1/order?{AF_MIXED_QUERY}", data={"quantity": "1", "price": "9000"})
    (request,) = sent
    assert request.url.query.decode() == AF_MIXED_QUERY
    assert request.content.decode() == f"{AF_MIXED_BODY}&signature={AF_MIXED_SIG}"
    assert request.headers["Content-Length"] == str(len(request.content))
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["X-MBX-APIKEY"] == AF_KEY


def test_hmac_auth_when_json_body_then_refused_without_secrets():
    client, sent = capture(AsterHmacAuth(AF_KEY, AF_SECRET, clock=lambda: AF_TS))
    with pytest.raises(VenueAuthError) as info:
        client.post("/fapi/v1/order", json={"symbol": "BTCUSDT"})
    assert sent == []
    assert_no_secret(str(info.value))


def test_wallet_auth_when_get_then_appends_user_signer_nonce_and_recoverable_signature():
    auth = AsterWalletAuth(USER, SIGNER, PRIVATE_KEY, clock_us=lambda: NONCE)
    client, sent = capture(auth)
    client.get("/fapi/v3/openOrders", params={"symbol": "SANDUSDT"})
    (request,) = sent
    msg, _, signature = request.url.query.decode().partition("&signature=")
    assert msg == f"symbol=SANDUSDT&user={USER}&signer={SIGNER}&nonce={NONCE}"
    assert signature == eip712_signature(PRIVATE_KEY, msg)
    assert recovered_signer(msg, signature) == SIGNER
    assert "X-MBX-APIKEY" not in request.headers


def test_wallet_auth_when_post_form_then_body_signed_and_nonces_increase():
    auth = AsterWalletAuth(USER, SIGNER, PRIVATE_KEY, clock_us=lambda: NONCE - 1000, offset_ms=1)
    client, sent = capture(auth)
    order = {"symbol": "SANDUSDT", "side": "BUY", "type": "LIMIT", "quantity": "190",
             "price": "0.28694", "timeInForce": "GTC"}
    client.post("/fapi/v3/order", data=order)
    client.post("/fapi/v3/order", data=order)
    first, second = sent
    assert first.url.query == b""
    msg, _, signature = first.content.decode().partition("&signature=")
    assert msg == (f"symbol=SANDUSDT&side=BUY&type=LIMIT&quantity=190&price=0.28694"
                   f"&timeInForce=GTC&user={USER}&signer={SIGNER}&nonce={NONCE}")
    assert recovered_signer(msg, signature) == SIGNER
    assert f"nonce={NONCE + 1}&signature=" in second.content.decode()


async def test_wallet_auth_when_async_client_then_same_signing():
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    auth = AsterWalletAuth(USER, SIGNER, PRIVATE_KEY, clock_us=lambda: NONCE)
    async with httpx.AsyncClient(auth=auth, transport=httpx.MockTransport(handler)) as client:
        await client.delete("https://fapi.asterdex.com/fapi/v3/order?symbol=SANDUSDT&orderId=7")
    msg, _, signature = sent[0].url.query.decode().partition("&signature=")
    assert msg == f"symbol=SANDUSDT&orderId=7&user={USER}&signer={SIGNER}&nonce={NONCE}"
    assert recovered_signer(msg, signature) == SIGNER


def test_wallet_auth_when_query_and_body_then_refused():
    client, sent = capture(AsterWalletAuth(USER, SIGNER, PRIVATE_KEY, clock_us=lambda: NONCE))
    with pytest.raises(VenueAuthError):
        client.post("/fapi/v3/order?symbol=SANDUSDT", data={"side": "BUY"})
    assert sent == []


# --- credentials never shown ------------------------------------------------------------------

def test_repr_and_str_when_auth_objects_then_no_credentials():
    hmac_auth = AsterHmacAuth(AF_KEY, AF_SECRET)
    wallet_auth = AsterWalletAuth(USER, SIGNER, PRIVATE_KEY)
    for auth in (hmac_auth, wallet_auth):
        assert_no_secret(repr(auth))
        assert_no_secret(str(auth))
        assert_no_secret(f"{auth!r} {[auth]}")
    assert SIGNER in repr(wallet_auth)  # addresses are public


def test_wallet_auth_when_key_invalid_or_foreign_then_error_without_key():
    with pytest.raises(VenueAuthError) as bad:
        AsterWalletAuth(USER, SIGNER, "0x" + "zz" * 32)
    assert "zz" * 32 not in str(bad.value)
    assert bad.value.__cause__ is None and bad.value.__suppress_context__
    other_key = "0x" + "11" * 32
    with pytest.raises(VenueAuthError) as foreign:
        AsterWalletAuth(USER, SIGNER, other_key)
    assert "11" * 32 not in str(foreign.value)
    assert_no_secret(str(foreign.value))


# --- credentials selection --------------------------------------------------------------------

def test_auth_from_env_when_hmac_configured_then_hmac_auth():
    auth = auth_from_env({"ASTER_API_KEY": AF_KEY, "ASTER_API_SECRET": AF_SECRET})
    assert isinstance(auth, AsterHmacAuth)


def test_auth_from_env_when_wallet_configured_then_wallet_auth_even_with_hmac():
    env = {"ASTER_USER": USER, "ASTER_SIGNER": SIGNER, "ASTER_PRIVATE_KEY": PRIVATE_KEY,
           "ASTER_API_KEY": AF_KEY, "ASTER_API_SECRET": AF_SECRET}
    assert isinstance(auth_from_env(env), AsterWalletAuth)


@pytest.mark.parametrize(("env", "named", "not_named"), [
    ({"ASTER_API_KEY": AF_KEY}, ["ASTER_API_SECRET"], ["ASTER_API_KEY"]),
    ({"ASTER_API_SECRET": AF_SECRET}, ["ASTER_API_KEY"], ["ASTER_API_SECRET"]),
    ({"ASTER_USER": USER, "ASTER_PRIVATE_KEY": PRIVATE_KEY}, ["ASTER_SIGNER"],
     ["ASTER_USER", "ASTER_PRIVATE_KEY"]),
    ({"ASTER_SIGNER": SIGNER, "ASTER_API_KEY": AF_KEY, "ASTER_API_SECRET": AF_SECRET},
     ["ASTER_USER", "ASTER_PRIVATE_KEY"], ["ASTER_API_KEY"]),
    ({}, ["ASTER_USER", "ASTER_SIGNER", "ASTER_PRIVATE_KEY", "ASTER_API_KEY",
          "ASTER_API_SECRET"], []),
])
def test_auth_from_env_when_pieces_missing_then_error_names_missing_variables(
        env: dict[str, str], named: list[str], not_named: list[str]):
    with pytest.raises(VenueAuthError) as info:
        auth_from_env(env)
    message = str(info.value)
    assert all(name in message for name in named)
    assert not any(name in message for name in not_named)
    assert_no_secret(message)
