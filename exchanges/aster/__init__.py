"""AsterDEX adapter: request signing (V1 HMAC and V3 API-wallet EIP-712) as httpx.Auth flows,
and decoders for the futures WebSocket market streams."""

from ._account import AsterAccount as AsterAccount
from ._auth import API_KEY_ENV as API_KEY_ENV
from ._auth import API_SECRET_ENV as API_SECRET_ENV
from ._auth import PRIVATE_KEY_ENV as PRIVATE_KEY_ENV
from ._auth import SIGNER_ENV as SIGNER_ENV
from ._auth import USER_ENV as USER_ENV
from ._auth import AsterHmacAuth as AsterHmacAuth
from ._auth import AsterWalletAuth as AsterWalletAuth
from ._auth import auth_from_env as auth_from_env
from ._book_sync import AsterBookSync as AsterBookSync
from ._client_ids import check_client_id as check_client_id
from ._client_ids import venue_client_id as venue_client_id
from ._errors import error_from_response as error_from_response
from ._errors import used_weight as used_weight
from ._instruments import AsterLotSize as AsterLotSize
from ._instruments import instruments_from_exchange_info as instruments_from_exchange_info
from ._instruments import market_lot_sizes_from_exchange_info as market_lot_sizes_from_exchange_info
from ._market import FUTURES_WS_URL as FUTURES_WS_URL
from ._market import AsterMarketData as AsterMarketData
from ._rest import FUTURES_BASE_URL as FUTURES_BASE_URL
from ._rest import AsterRest as AsterRest
from ._signing import eip712_digest as eip712_digest
from ._signing import eip712_signature as eip712_signature
from ._signing import eip712_typed_data as eip712_typed_data
from ._signing import hmac_payload as hmac_payload
from ._signing import hmac_signature as hmac_signature
from ._spot_account import AsterSpotAccount as AsterSpotAccount
from ._spot_market import SPOT_BASE_URL as SPOT_BASE_URL
from ._spot_market import SPOT_WS_URL as SPOT_WS_URL
from ._spot_market import AsterSpotMarketData as AsterSpotMarketData
from ._streams import AsterDepthUpdate as AsterDepthUpdate
from ._streams import AsterMarkPrice as AsterMarkPrice
from ._streams import decode_book_ticker as decode_book_ticker
from ._streams import decode_combined as decode_combined
from ._streams import decode_depth_update as decode_depth_update
from ._streams import decode_mark_price as decode_mark_price
from ._user_stream import LISTEN_KEY_KEEPALIVE_S as LISTEN_KEY_KEEPALIVE_S

__all__ = [
    "API_KEY_ENV",
    "API_SECRET_ENV",
    "FUTURES_BASE_URL",
    "FUTURES_WS_URL",
    "LISTEN_KEY_KEEPALIVE_S",
    "PRIVATE_KEY_ENV",
    "SIGNER_ENV",
    "SPOT_BASE_URL",
    "SPOT_WS_URL",
    "USER_ENV",
    "AsterAccount",
    "AsterBookSync",
    "AsterDepthUpdate",
    "AsterHmacAuth",
    "AsterLotSize",
    "AsterMarkPrice",
    "AsterMarketData",
    "AsterRest",
    "AsterSpotAccount",
    "AsterSpotMarketData",
    "AsterWalletAuth",
    "auth_from_env",
    "check_client_id",
    "decode_book_ticker",
    "decode_combined",
    "decode_depth_update",
    "decode_mark_price",
    "eip712_digest",
    "eip712_signature",
    "eip712_typed_data",
    "error_from_response",
    "hmac_payload",
    "hmac_signature",
    "instruments_from_exchange_info",
    "market_lot_sizes_from_exchange_info",
    "used_weight",
    "venue_client_id",
]
