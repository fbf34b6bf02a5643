"""Backpack HTTP responses → typed venue errors (venues.md §2.4, §4)."""

from __future__ import annotations

import json

import pytest

from exchanges import (
    OrderOutcomeUnknownError,
    RateLimitedError,
    RejectReason,
    VenueAuthError,
    VenueError,
    VenueRejectedError,
    VenueTransportError,
)
from exchanges.backpack import error_from_response

CLIENT_ID = "42"


def _body(code: str, message: str) -> bytes:
    return json.dumps({"code": code, "message": message}).encode()


def _error(status: int, body: bytes, headers: dict[str, str] | None = None, *,
           client_id: str | None = CLIENT_ID, placement: bool = True) -> VenueError | None:
    return error_from_response(status, body, headers or {}, client_id=client_id,
                               is_order_placement=placement)


@pytest.mark.parametrize(
    ("code", "message", "reason"),
    [
        ("INSUFFICIENT_FUNDS", "Insufficient funds", RejectReason.INSUFFICIENT_MARGIN),
        ("INSUFFICIENT_MARGIN", "Insufficient margin", RejectReason.INSUFFICIENT_MARGIN),
        ("INVALID_ORDER", "Order with client ID already exists: 123456739",
         RejectReason.DUPLICATE_CLIENT_ID),
        ("INVALID_ORDER", "Order would immediately match and take", RejectReason.INVALID),
        ("INVALID_PRICE", "Price out of bounds", RejectReason.INVALID),
        ("INVALID_QUANTITY", "Quantity below the minimum", RejectReason.INVALID),
        ("INVALID_CLIENT_REQUEST", "Must specify either `clientId` or `orderId`",
         RejectReason.INVALID),
        ("MAINTENANCE", "System under maintenance.", RejectReason.INVALID),
        ("TRADING_PAUSED", "Trading paused", RejectReason.INVALID),
    ],
)
def test_error_from_response_when_documented_code_then_rejected_with_reason(
    code: str, message: str, reason: RejectReason
):
    error = _error(400, _body(code, message))
    assert type(error) is VenueRejectedError
    assert error.reason is reason and error.code == code
    assert message in str(error) and code in str(error)


def test_error_from_response_when_resource_not_found_on_cancel_then_unknown_order():
    error = _error(404, _body("RESOURCE_NOT_FOUND", "Order not found"), placement=False)
    assert isinstance(error, VenueRejectedError) and error.reason is RejectReason.UNKNOWN_ORDER


def test_error_from_response_when_resource_not_found_without_order_then_invalid():
    error = _error(404, _body("RESOURCE_NOT_FOUND", "Not found"), client_id=None, placement=False)
    assert isinstance(error, VenueRejectedError) and error.reason is RejectReason.INVALID
    assert error.code == "RESOURCE_NOT_FOUND"


@pytest.mark.parametrize("code", ["INVALID_SIGNATURE", "UNAUTHORIZED"])
def test_error_from_response_when_auth_code_then_auth_error(code: str):
    error = _error(401, _body(code, "Invalid signature"))
    assert isinstance(error, VenueAuthError) and code in str(error)


@pytest.mark.parametrize("body", [b"Request has expired", b'{"code": "UNAUTHORIZED", '
                                  b'"message": "Request has expired"}'])
def test_error_from_response_when_request_expired_then_timestamp(body: bytes):
    error = _error(401, body)
    assert isinstance(error, VenueRejectedError) and error.reason is RejectReason.TIMESTAMP


def test_error_from_response_when_401_without_code_then_auth_error():
    assert isinstance(_error(401, b"Unauthorized"), VenueAuthError)


def test_error_from_response_when_too_many_requests_code_then_rate_limited():
    error = _error(400, _body("TOO_MANY_REQUESTS", "Too many requests"), {"Retry-After": "1"})
    assert isinstance(error, RateLimitedError)
    assert error.code == "TOO_MANY_REQUESTS" and error.retry_after_s == 1.0


def test_error_from_response_when_429_then_rate_limited_with_retry_after():
    error = _error(429, _body("TOO_MANY_REQUESTS", "Too many requests"), {"retry-after": "3"})
    assert isinstance(error, RateLimitedError)
    assert error.reason is RejectReason.RATE_LIMITED
    assert error.retry_after_s == 3.0 and error.ip_banned is False


def test_error_from_response_when_418_then_rate_limited_and_ip_banned():
    error = _error(418, b"")
    assert isinstance(error, RateLimitedError) and error.ip_banned is True
    assert "banned" in str(error)


def test_error_from_response_when_unknown_code_then_invalid_keeping_code():
    error = _error(400, _body("SOMETHING_NEW", "A new refusal"))
    assert type(error) is VenueRejectedError
    assert error.reason is RejectReason.INVALID and error.code == "SOMETHING_NEW"


def test_error_from_response_when_503_on_order_placement_then_outcome_unknown_with_client_id():
    error = _error(503, _body("MAINTENANCE", "System under maintenance."), placement=True)
    assert isinstance(error, OrderOutcomeUnknownError)
    assert error.client_id == CLIENT_ID and "maintenance" in str(error)


def test_error_from_response_when_503_on_get_then_transport_error():
    error = _error(503, b"System under maintenance.", client_id=None, placement=False)
    assert type(error) is VenueTransportError


def test_error_from_response_when_html_500_then_transport_error_truncated():
    html = b"<html><body>" + b"Internal Server Error " * 100 + b"</body></html>"
    error = _error(500, html, placement=False)
    assert type(error) is VenueTransportError
    assert "HTTP 500" in str(error) and len(str(error)) < 300


def test_error_from_response_when_body_echoes_signature_header_then_message_redacts_it():
    error = _error(502, b"<pre>X-Signature: c2lnbmF0dXJl X-API-Key: a2V5</pre>", placement=False)
    assert "c2lnbmF0dXJl" not in str(error) and "a2V5" not in str(error)


@pytest.mark.parametrize(
    ("status", "body"),
    [(200, b'{"id": "111", "clientId": 42, "status": "New"}'), (200, b"[]"), (202, b""),
     (202, b"[]")],
)
def test_error_from_response_when_2xx_then_none(status: int, body: bytes):
    assert _error(status, body, placement=False) is None


def test_error_from_response_when_2xx_body_is_only_an_error_object_then_mapped():
    error = _error(200, _body("INSUFFICIENT_MARGIN", "Insufficient margin"))
    assert isinstance(error, VenueRejectedError)
    assert error.reason is RejectReason.INSUFFICIENT_MARGIN
