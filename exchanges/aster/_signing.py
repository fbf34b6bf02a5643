"""Aster request signing: pure functions, no I/O, no clock (venues.md §1.3, §1.4, §3).

V1 (legacy, Binance clone): hex HMAC-SHA256 over the query string and the form body joined
with nothing between them. V3 (API wallet): an EIP-712 signature over the parameter string as
sent, domain `AsterSignTransaction`, type `Message{msg:string}`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

EIP712_NAME = "AsterSignTransaction"
EIP712_VERSION = "1"
MAINNET_CHAIN_ID = 1666
TESTNET_CHAIN_ID = 714  # fapi.asterdex-testnet.com (venues.md §1.2)
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def hmac_signature(secret: str, payload: str) -> str:
    """Lowercase hex HMAC-SHA256 of `payload` keyed by `secret` (V1 `signature`)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def hmac_payload(query: str, body: str) -> str:
    """The V1 `totalParams`: query string then body, **no `&` between them**.

    The trap: Aster's Example 3 prints the signature of the `&`-joined string; the venue's rule
    (and Binance's) is plain concatenation (venues.md §3.1 doc-bug note).
    """
    return query + body


def eip712_typed_data(msg: str, chain_id: int = MAINNET_CHAIN_ID) -> dict[str, Any]:
    """The full V3 typed-data document for one request's parameter string."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Message": [{"name": "msg", "type": "string"}],
        },
        "primaryType": "Message",
        "domain": {
            "name": EIP712_NAME,
            "version": EIP712_VERSION,
            "chainId": chain_id,
            "verifyingContract": ZERO_ADDRESS,
        },
        "message": {"msg": msg},
    }


def eip712_signature(private_key: str | bytes, msg: str, chain_id: int = MAINNET_CHAIN_ID) -> str:
    """`0x`-prefixed 65-byte r‖s‖v hex signature of `msg` (V3 `signature`).

    `msg` must be the parameter string exactly as sent, without `signature`.
    """
    signable = encode_typed_data(full_message=eip712_typed_data(msg, chain_id))
    signed = Account.sign_message(signable, private_key=private_key)
    return "0x" + bytes(signed.signature).hex()


def legacy_v3_hash(json_params: str, user: str, signer: str, nonce: int) -> bytes:
    """keccak256(abi.encode(string, address, address, uint256)) of the superseded 2025-09 V3
    draft (venues.md §1.4 last bullet, §3.4). Kept only to check that draft's vector."""
    from eth_abi.abi import encode
    from eth_utils.crypto import keccak

    return bytes(keccak(encode(["string", "address", "address", "uint256"],
                               [json_params, user, signer, nonce])))


def legacy_v3_signature(private_key: str | bytes, digest: bytes) -> str:
    """`eth_sign` personal-message signature of a `legacy_v3_hash` digest (superseded draft)."""
    signed = Account.sign_message(encode_defunct(primitive=digest), private_key=private_key)
    return "0x" + bytes(signed.signature).hex()
