"""Aster request signing: pure functions, no I/O, no clock (venues.md §1.3, §1.4, §3).

V1 (legacy, Binance clone): hex HMAC-SHA256 over the query string and the form body joined
with nothing between them. V3 (API wallet): an EIP-712 signature over the parameter string as
sent, domain `AsterSignTransaction`, type `Message{msg:string}`.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.datatypes import PrivateKey
from eth_utils.crypto import keccak

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


_MESSAGE_TYPE_HASH = keccak(b"Message(string msg)")
_DOMAIN_TYPE_HASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)


@functools.cache
def _domain_separator(chain_id: int) -> bytes:
    """`hashStruct(domain)`: fixed per chain, so computed once rather than per request."""
    return keccak(_DOMAIN_TYPE_HASH + keccak(EIP712_NAME.encode()) + keccak(EIP712_VERSION.encode())
                  + chain_id.to_bytes(32, "big") + bytes(32))


def eip712_digest(msg: str, chain_id: int = MAINNET_CHAIN_ID) -> bytes:
    """The 32-byte EIP-712 hash of `eip712_typed_data(msg, chain_id)`, computed directly.

    Encoding the typed-data document generically costs ~100 µs per request; the domain never
    changes and the message has one string field, so the hash is two keccaks here. A test
    checks it against eth-account's generic encoding.
    """
    struct_hash = keccak(_MESSAGE_TYPE_HASH + keccak(msg.encode()))
    return keccak(b"\x19\x01" + _domain_separator(chain_id) + struct_hash)


def private_key_of(value: str | bytes | PrivateKey) -> PrivateKey:
    """A parsed secp256k1 key from hex (with or without `0x`), raw bytes, or a key object.

    Auth objects parse once at construction: parsing costs ~40 µs, a third of a signature.
    """
    if isinstance(value, PrivateKey):
        return value
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else value
    return PrivateKey(raw)


def eip712_signature(private_key: str | bytes | PrivateKey, msg: str,
                     chain_id: int = MAINNET_CHAIN_ID) -> str:
    """`0x`-prefixed 65-byte r‖s‖v hex signature of `msg` (V3 `signature`), v as 27/28.

    `msg` must be the parameter string exactly as sent, without `signature`.
    """
    signature = private_key_of(private_key).sign_msg_hash(eip712_digest(msg, chain_id))
    r: int = signature.r
    s: int = signature.s
    v: int = signature.v
    return "0x" + (r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v + 27])).hex()


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
