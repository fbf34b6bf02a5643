"""`BackpackRest`: Backpack's REST API over one `httpx.AsyncClient` (venues.md §2.1-2.4).

One layer, one policy (STYLE §2): this module sends requests, signs the private ones through
`BackpackAuth`, and turns every response and transport failure into a typed venue error. It
knows nothing about orders; `BackpackAccount` (`_account.py`) maps the JSON.

Bodies of POST/DELETE are JSON with content type `application/json; charset=utf-8`. They are
encoded here once, and `BackpackAuth` signs the bytes that are sent, so a decimal string such
as `"1.50"` is byte-identical in the body and the signing string (§2.2, §4 pitfall 2).

Error handling:
- Every response goes through `error_from_response`; its error is raised from here.
- httpx timeouts and other transport failures become `OrderOutcomeUnknownError` when the
  request could have created an order (a timed-out POST may have been executed), else
  `VenueTransportError`; a connect failure never sent the request, so it is the latter.
- A 2xx body that is not JSON is a transport problem too (a proxy page, a cut-off body).
Messages name the method, path and exception type only: never headers, keys or signatures.

Resource handling: a client passed in belongs to the caller; one created here is closed by
`aclose()` (or `async with`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

import httpx

from .._exceptions import OrderOutcomeUnknownError, VenueTransportError
from .._http_errors import never_sent
from .._models import Instrument
from ._auth import BackpackAuth
from ._errors import VENUE, error_from_response
from ._instruments import instruments_from_markets

DEFAULT_BASE_URL: Final = "https://api.backpack.exchange"
"""§2.1."""
JSON_CONTENT_TYPE: Final = "application/json; charset=utf-8"
"""§2.2, as the official Rust client sends it."""

Params = Mapping[str, str | int]
Body = Mapping[str, str | int | bool]
Batch = Sequence[Body]
"""A JSON array body: the batch order endpoint (`POST /api/v1/orders`, §2.4)."""


class BackpackRest:
    """Backpack REST calls: public ones unsigned, private ones signed by `auth`.

    `client` is used as given (its base URL and transport included); otherwise a client is
    created on `base_url` with `transport` (tests pass `httpx.MockTransport(sim.handle)`).
    Calls take no timeout: the caller owns the deadline (`trio.fail_after`).
    """

    def __init__(
        self,
        auth: BackpackAuth | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        base_url: str = DEFAULT_BASE_URL,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._auth = auth
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(
            base_url=base_url, transport=transport
        )

    @property
    def auth(self) -> BackpackAuth | None:
        """The signer of private calls (None for a public-only client); the user stream signs
        its WebSocket subscription with it."""
        return self._auth

    def __repr__(self) -> str:
        base_url = str(self._client.base_url)
        return f"BackpackRest(base_url={base_url!r}, signed={self._auth is not None})"

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> BackpackRest:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -----------------------------------------------------------------------------------------
    # Public endpoints

    async def server_time_ms(self) -> int:
        """The venue's clock, ms (`GET /api/v1/time`, which answers a bare number)."""
        response = await self._send("GET", "/api/v1/time", signed=False)
        try:
            return int(response.text.strip().strip('"'))
        except ValueError:
            raise VenueTransportError(VENUE, "GET /api/v1/time: not a number of ms") from None

    async def instruments(self) -> list[Instrument]:
        """Open SPOT and PERP markets (`GET /api/v1/markets`, see `instruments_from_markets`)."""
        response = await self._send("GET", "/api/v1/markets", signed=False)
        return instruments_from_markets(response.content)

    # -----------------------------------------------------------------------------------------
    # Signed endpoints

    async def signed(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Body | Batch | None = None,
        client_id: str | None = None,
        is_order_placement: bool = False,
    ) -> Any:
        """Send a signed request; return its decoded JSON (None for an empty 2xx body).

        `client_id` names the order concerned (ours, for error messages and UNKNOWN_ORDER);
        `is_order_placement` marks a request that may create an order. `body` is a JSON
        object, or a JSON array of objects for the batch endpoint (signed by the batch rule).
        """
        response = await self._send(method, path, params=params, body=body, signed=True,
                                    client_id=client_id, is_order_placement=is_order_placement)
        return self._json(response, method, path, client_id, is_order_placement)

    async def signed_response(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Body | None = None,
    ) -> tuple[int, Any]:
        """Like `signed`, with the HTTP status: cancel-all needs to tell 200 from 202."""
        response = await self._send(method, path, params=params, body=body, signed=True)
        return response.status_code, self._json(response, method, path, None, False)

    # -----------------------------------------------------------------------------------------
    # Private helpers

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Body | Batch | None = None,
        signed: bool,
        client_id: str | None = None,
        is_order_placement: bool = False,
    ) -> httpx.Response:
        if signed and self._auth is None:
            raise RuntimeError(f"{method} {path} needs credentials: BackpackRest has no auth")
        content: bytes | None = None
        headers: dict[str, str] = {}
        if body is not None:
            # Encoded once: these exact bytes are what BackpackAuth signs and what is sent.
            wire = dict(body) if isinstance(body, Mapping) else [dict(each) for each in body]
            content = json.dumps(wire, separators=(",", ":")).encode("utf-8")
            headers["Content-Type"] = JSON_CONTENT_TYPE
        try:
            response = await self._client.request(
                method, path, params=dict(params) if params else None, content=content,
                headers=headers, auth=self._auth if signed else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.RequestError as exc:  # transport errors, undecodable bodies, redirects
            # Not chained: httpx's exception holds the request, signature headers and all.
            what = f"{method} {path}: {type(exc).__name__}"
            if is_order_placement and not never_sent(exc):
                raise OrderOutcomeUnknownError(VENUE, client_id or "", what) from None
            raise VenueTransportError(VENUE, what) from None
        error = error_from_response(
            response.status_code, response.content, response.headers,
            client_id=client_id, is_order_placement=is_order_placement,
        )
        if error is not None:
            raise error
        return response

    @staticmethod
    def _json(response: httpx.Response, method: str, path: str, client_id: str | None,
              is_order_placement: bool) -> Any:
        if not response.content.strip():
            return None
        try:
            # Decimal for JSON numbers: a price sent as a number must not pass through float.
            return json.loads(response.content, parse_float=Decimal)
        except ValueError:
            what = f"{method} {path}: HTTP {response.status_code} body is not JSON"
            if is_order_placement:
                raise OrderOutcomeUnknownError(VENUE, client_id or "", what) from None
            raise VenueTransportError(VENUE, what) from None
