"""Aster futures REST transport (venues.md §1.2, §1.3, §1.6, §1.9): one `httpx.AsyncClient`,
signing through the auth flow, every answer through `error_from_response`.

Error handling: a response the venue gave is translated by `error_from_response`. A request
that got no response (timeout, refused connection, dropped socket) raises
`OrderOutcomeUnknownError` when it could have created an order (the venue may have it), else
`VenueTransportError`. httpx's own exception is not chained: it holds the request, whose URL
query carries the signature, and a traceback printer would show it.

Resource handling: `AsterRest` owns the client it creates and closes it in `aclose()` (or on
leaving `async with`); a client passed in stays the caller's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Final

import httpx
import msgspec

from .._exceptions import OrderOutcomeUnknownError, VenueAuthError, VenueTransportError
from .._http_errors import never_sent
from .._models import Instrument
from ._auth import FORM_CONTENT_TYPE, VENUE, AsterHmacAuth, AsterWalletAuth, wall_clock_ms
from ._errors import error_from_response
from ._instruments import instruments_from_exchange_info

FUTURES_BASE_URL: Final = "https://fapi.asterdex.com"
"""Futures REST base (§1.2); paths are `/fapi/v1/...`, `/fapi/v2/...` (V1 HMAC auth) and
`/fapi/v3/...` (V3 API-wallet auth, see `signed_path`)."""

_V3_PREFIX: Final = "/fapi/v3/"
_V1_V2_PREFIXES: Final = ("/fapi/v1/", "/fapi/v2/")

LISTEN_KEY_PATH: Final = "/fapi/v1/listenKey"
"""POST creates (or returns the active), PUT extends, DELETE closes the user-stream key (§1.8)."""

Params = Sequence[tuple[str, str]]
"""Request parameters in the order they are sent (and signed)."""


class _ServerTime(msgspec.Struct):
    serverTime: int


_SERVER_TIME: Final = msgspec.json.Decoder(_ServerTime)


class _ListenKey(msgspec.Struct):
    listenKey: str


_LISTEN_KEY: Final = msgspec.json.Decoder(_ListenKey)


def _encode(params: Params) -> str:
    return str(httpx.QueryParams(list(params)))


def signed_path(path: str, auth: AsterHmacAuth | AsterWalletAuth | None) -> str:
    """The path a signed call to `path` goes to under `auth`.

    V1 HMAC auth (or none): `path` unchanged. V3 API-wallet auth: `/fapi/v1/<name>` and
    `/fapi/v2/<name>` become `/fapi/v3/<name>`; any other path (spot `/api/v1/...`,
    `/fapi/v4/account`, one already under `/fapi/v3/`) is unchanged.

    Source: venues.md §1.6, "V3 uses the same names under `/fapi/v3/`", and §1.2 (AF1, AF3:
    V3 paths are `/fapi/v3/...`); AF3 shows `POST /fapi/v3/order` and `/fapi/v3/noop` signed
    this way (§1.4). Unconfirmed: that *every* name we use exists under `/fapi/v3/` under the
    same name. In particular V1 has `positionRisk` and `balance` only under `/fapi/v2/`, and
    venues.md does not list the V3 names one by one; it says "same names", which is what this
    follows. Only signed calls are mapped: public endpoints (`time`, `exchangeInfo`, `depth`)
    go through `public()` and stay on V1 whatever the auth. The listen-key calls go through
    `signed()`, so under V3 they are `/fapi/v3/listenKey` (same caveat).
    """
    if isinstance(auth, AsterWalletAuth):
        for prefix in _V1_V2_PREFIXES:
            if path.startswith(prefix):
                return _V3_PREFIX + path.removeprefix(prefix)
    return path


class AsterRest:
    """Public and signed futures REST calls; no business logic (see `AsterAccount`).

    `auth` signs every private call and holds the clock offset that `sync_clock()` measures.
    Without `auth` (market data only) public calls work and `signed()` raises `VenueAuthError`.
    GET parameters go in the query string; POST and DELETE parameters in a form body (§1.3),
    so that what the venue sees is exactly what was signed. Functions take no timeout: the
    caller owns the deadline (a cancelled placement is an unknown outcome to the caller, too).
    """

    def __init__(self, auth: AsterHmacAuth | AsterWalletAuth | None = None, *,
                 base_url: str = FUTURES_BASE_URL, client: httpx.AsyncClient | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 clock_ms: Callable[[], int] = wall_clock_ms) -> None:
        self.auth = auth
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(
            base_url=base_url, transport=transport)
        self._clock_ms = clock_ms

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> AsterRest:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    # -----------------------------------------------------------------------------------------
    # Public endpoints

    async def server_time_ms(self) -> int:
        """`GET /fapi/v1/time`: the venue's clock in ms."""
        body = await self.public("GET", "/fapi/v1/time")
        try:
            return _SERVER_TIME.decode(body).serverTime
        except msgspec.DecodeError as exc:
            raise VenueTransportError(VENUE, f"/fapi/v1/time: unexpected answer: {exc}") from None

    async def server_time_ns(self) -> int:
        return await self.server_time_ms() * 1_000_000

    async def sync_clock(self) -> int:
        """Measure server time − local time and store it as `auth.offset_ms` (when there is
        an `auth`); returns it.

        The server's stamp is compared with the midpoint of our send and receive times, which
        is exact when the two legs take equally long and off by at most half the round trip.
        """
        sent = self._clock_ms()
        server = await self.server_time_ms()
        received = self._clock_ms()
        offset = server - (sent + received) // 2
        if self.auth is not None:
            self.auth.offset_ms = offset
        return offset

    def now_ms(self) -> int:
        """Our best estimate of the venue's clock, ms: local time plus the synced offset."""
        return self._clock_ms() + (self.auth.offset_ms if self.auth is not None else 0)

    async def instruments(self) -> list[Instrument]:
        """TRADING perpetuals from `GET /fapi/v1/exchangeInfo`."""
        return instruments_from_exchange_info(await self.public("GET", "/fapi/v1/exchangeInfo"),
                                              kind="perp")

    # -----------------------------------------------------------------------------------------
    # User-stream keys (§1.8, §4 pitfall 5)
    #
    # USER_STREAM endpoints need only the API key (§1.3), but we send them through `signed()`:
    # it is the one path that works for both schemes (V3 wallet auth has no API-key header at
    # all, only a signature), the venue ignores the extra signed parameters, and it keeps one
    # authenticated code path instead of two. Being signed calls, under V3 wallet auth they go
    # to `/fapi/v3/listenKey` (`signed_path`).

    async def new_listen_key(self) -> str:
        """`POST /fapi/v1/listenKey`: the account's listen key, valid 60 min. While one is
        active the venue returns that same key (and extends it) instead of a new one."""
        body = await self.signed("POST", LISTEN_KEY_PATH)
        try:
            return _LISTEN_KEY.decode(body).listenKey
        except msgspec.DecodeError as exc:
            raise VenueTransportError(VENUE, f"{LISTEN_KEY_PATH}: unexpected answer: "
                                             f"{type(exc).__name__}") from None

    async def keepalive_listen_key(self) -> None:
        """`PUT /fapi/v1/listenKey`: extend the active key by 60 min. An expired or unknown
        key is refused (-1125 → `VenueRejectedError`): create a new one."""
        await self.signed("PUT", LISTEN_KEY_PATH)

    async def close_listen_key(self) -> None:
        """`DELETE /fapi/v1/listenKey`. The key is shared by every stream of the account
        (§4 pitfall 5): closing it ends them all. `AsterAccount` never calls this."""
        await self.signed("DELETE", LISTEN_KEY_PATH)

    # -----------------------------------------------------------------------------------------
    # Requests

    async def public(self, method: str, path: str, params: Params = ()) -> bytes:
        """An unsigned call; the response body on success."""
        return await self._send(method, path, params, signed=False, client_id=None,
                                is_order_placement=False)

    async def signed(self, method: str, path: str, params: Params = (), *,
                     client_id: str | None = None, is_order_placement: bool = False) -> bytes:
        """A signed (TRADE / USER_DATA) call; the response body on success. `path` is the V1
        name (`/fapi/v1/...`, `/fapi/v2/...`); under V3 wallet auth it is sent to
        `signed_path(path, auth)`, i.e. `/fapi/v3/...`.

        `client_id` is the order id the call concerns (named in errors); set
        `is_order_placement` when the call can create an order, so that a lost answer raises
        `OrderOutcomeUnknownError`. Without credentials raises `VenueAuthError`.
        """
        if self.auth is None:
            raise VenueAuthError(VENUE, "no credentials configured")
        return await self._send(method, signed_path(path, self.auth), params, signed=True,
                                client_id=client_id, is_order_placement=is_order_placement)

    async def _send(self, method: str, path: str, params: Params, *, signed: bool,
                    client_id: str | None, is_order_placement: bool) -> bytes:
        encoded = _encode(params)
        if method == "GET":
            request = self._client.build_request(method, path + (f"?{encoded}" if encoded else ""))
        else:
            request = self._client.build_request(
                method, path, content=encoded.encode("ascii"),
                headers={"Content-Type": FORM_CONTENT_TYPE})
        try:
            response = await self._client.send(request, auth=self.auth if signed else None)
        except httpx.RequestError as exc:  # transport errors, undecodable bodies, redirects
            # Only the path and the exception's class: the query holds the signature.
            what = f"{method} {path}: no response ({type(exc).__name__})"
            if is_order_placement and not never_sent(exc):
                raise OrderOutcomeUnknownError(VENUE, client_id or "", what) from None
            raise VenueTransportError(VENUE, what) from None
        error = error_from_response(response.status_code, response.content, response.headers,
                                    client_id=client_id, is_order_placement=is_order_placement)
        if error is not None:
            raise error
        return response.content
