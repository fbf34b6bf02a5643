"""Backpack Exchange adapter: ED25519 request signing, client-id mapping and WebSocket
market-stream decoders (venues.md §2).

Public names live here; code lives in `_private` modules.
"""

from ._account import BackpackAccount as BackpackAccount
from ._auth import ENDPOINT_INSTRUCTIONS as ENDPOINT_INSTRUCTIONS
from ._auth import INSTRUCTION_EXTENSION as INSTRUCTION_EXTENSION
from ._auth import BackpackAuth as BackpackAuth
from ._auth import default_instruction_for as default_instruction_for
from ._auth import wall_clock_ms as wall_clock_ms
from ._book_sync import BackpackBookSync as BackpackBookSync
from ._client_ids import ClientIdMap as ClientIdMap
from ._client_ids import uint32_of as uint32_of
from ._errors import error_from_response as error_from_response
from ._instruments import instruments_from_markets as instruments_from_markets
from ._market import BackpackMarketData as BackpackMarketData
from ._rest import DEFAULT_BASE_URL as DEFAULT_BASE_URL
from ._rest import BackpackRest as BackpackRest
from ._signing import BATCH_INSTRUCTION as BATCH_INSTRUCTION
from ._signing import DEFAULT_WINDOW_MS as DEFAULT_WINDOW_MS
from ._signing import MAX_WINDOW_MS as MAX_WINDOW_MS
from ._signing import batch_signing_string as batch_signing_string
from ._signing import public_key_b64 as public_key_b64
from ._signing import render_value as render_value
from ._signing import sign as sign
from ._signing import signing_string as signing_string
from ._streams import BackpackDepthUpdate as BackpackDepthUpdate
from ._streams import BackpackMarkPrice as BackpackMarkPrice
from ._streams import decode_book_ticker as decode_book_ticker
from ._streams import decode_depth as decode_depth
from ._streams import decode_mark_price as decode_mark_price
from ._streams import decode_market_message as decode_market_message

__all__ = [
    "BATCH_INSTRUCTION",
    "DEFAULT_BASE_URL",
    "DEFAULT_WINDOW_MS",
    "ENDPOINT_INSTRUCTIONS",
    "INSTRUCTION_EXTENSION",
    "MAX_WINDOW_MS",
    "BackpackAccount",
    "BackpackAuth",
    "BackpackBookSync",
    "BackpackDepthUpdate",
    "BackpackMarkPrice",
    "BackpackMarketData",
    "BackpackRest",
    "ClientIdMap",
    "batch_signing_string",
    "decode_book_ticker",
    "decode_depth",
    "decode_mark_price",
    "decode_market_message",
    "default_instruction_for",
    "error_from_response",
    "instruments_from_markets",
    "public_key_b64",
    "render_value",
    "sign",
    "signing_string",
    "uint32_of",
    "wall_clock_ms",
]
