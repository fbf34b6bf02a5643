"""Aster HTTP responses → typed venue errors (venues.md §1.9, §4)."""

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
from exchanges.aster import error_from_response, used_weight

CLIENT_ID = "stw-1-42"


def _body(code: int, msg: str) -> bytes:
    return json.dumps({"code": code, "msg": msg}).encode()


def _error(status: int, body: bytes, headers: dict[str, str] | None = None, *,
           client_id: str | None = CLIENT_ID, placement: bool = True) -> VenueError | None:
    return error_from_response(status, body, headers or {}, client_id=client_id,
                               is_order_placement=placement)


@pytest.mark.parametrize(
    ("code", "msg", "reason"),
    [
        (-1021, "Timestamp for this request is outside of the recvWindow.", RejectReason.TIMESTAMP),
        (-1111, "Precision is over the maximum defined for this asset.", RejectReason.QTY_STEP),
        (-1121, "Invalid symbol.", RejectReason.UNKNOWN_SYMBOL),
        (-1125, "This listenKey does not exist.", RejectReason.INVALID),
        (-2010, "NEW_ORDER_REJECTED", RejectReason.INVALID),
        (-2010, "Duplicate order sent.", RejectReason.DUPLICATE_CLIENT_ID),
        (-2011, "Unknown order sent.", RejectReason.UNKNOWN_ORDER),
        (-2011, "CANCEL_REJECTED", RejectReason.INVALID),
        (-2013, "Order does not exist.", RejectReason.UNKNOWN_ORDER),
        (-2019, "Margin is insufficient.", RejectReason.INSUFFICIENT_MARGIN),
        (-2021, "Order would immediately trigger.", RejectReason.INVALID),
        (-2022, "ReduceOnly Order is rejected.", RejectReason.REDUCE_ONLY_WOULD_INCREASE),
        (-4014, "Price not increased by tick size.", RejectReason.PRICE_TICK),
        (-4023, "Quantity not increased by step size.", RejectReason.QTY_STEP),
        (-4164, "Order's notional must be no smaller than 5.0 (unless you choose reduce only)",
         RejectReason.MIN_NOTIONAL),
        (-5022, "Due to the order could not be executed as maker, the Post Only order will be "
                "rejected.", RejectReason.POST_ONLY_WOULD_TAKE),
        (-5060, "PERCENT_PRICE", RejectReason.INVALID),
        (-5076, "Total order value should be more than 5 USDT", RejectReason.MIN_NOTIONAL),
    ],
)
def test_error_from_response_when_documented_code_then_rejected_with_reason(
    code: int, msg: str, reason: RejectReason
):
    error = _error(400, _body(code, msg))
    assert type(error) is VenueRejectedError
    assert error.reason is reason
    assert error.code == str(code)
    assert msg[:40] in str(error) and str(code) in str(error)


def test_error_from_response_when_code_1003_then_rate_limited_with_retry_after():
    error = _error(400, _body(-1003, "Too many requests."), {"Retry-After": "7"})
    assert isinstance(error, RateLimitedError)
    assert error.reason is RejectReason.RATE_LIMITED and error.code == "-1003"
    assert error.retry_after_s == 7.0 and error.ip_banned is False


def test_error_from_response_when_code_1022_then_auth_error():
    error = _error(400, _body(-1022, "Signature for this request is not valid."))
    assert isinstance(error, VenueAuthError)
    assert "-1022" in str(error)


def test_error_from_response_when_unknown_code_then_invalid_keeping_code():
    error = _error(400, _body(-9999, "Something new."))
    assert type(error) is VenueRejectedError
    assert error.reason is RejectReason.INVALID and error.code == "-9999"
    assert "Something new." in str(error)


def test_error_from_response_when_429_then_rate_limited_with_retry_after():
    error = _error(429, _body(-1003, "Too many requests."), {"retry-after": "2.5"})
    assert isinstance(error, RateLimitedError)
    assert error.reason is RejectReason.RATE_LIMITED
    assert error.retry_after_s == 2.5 and error.ip_banned is False and error.code == "-1003"


def test_error_from_response_when_429_without_retry_after_then_retry_after_is_none():
    error = _error(429, b"")
    assert isinstance(error, RateLimitedError) and error.retry_after_s is None


def test_error_from_response_when_retry_after_is_a_date_then_retry_after_is_none():
    error = _error(429, b"", {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"})
    assert isinstance(error, RateLimitedError) and error.retry_after_s is None


def test_error_from_response_when_418_then_rate_limited_and_ip_banned():
    error = _error(418, _body(-1003, "Way too many requests; IP banned."), {"Retry-After": "120"})
    assert isinstance(error, RateLimitedError)
    assert error.ip_banned is True and error.retry_after_s == 120.0
    assert "banned" in str(error)


def test_error_from_response_when_503_on_order_placement_then_outcome_unknown_with_client_id():
    error = _error(503, b"Service Unavailable", client_id=CLIENT_ID, placement=True)
    assert isinstance(error, OrderOutcomeUnknownError)
    assert error.client_id == CLIENT_ID and CLIENT_ID in str(error)


def test_error_from_response_when_503_on_get_then_transport_error():
    error = _error(503, b"Service Unavailable", client_id=None, placement=False)
    assert type(error) is VenueTransportError


def test_error_from_response_when_html_500_then_transport_error_truncated():
    html = b"<html><body>" + b"Internal Server Error " * 100 + b"</body></html>"
    error = _error(500, html, placement=False)
    assert type(error) is VenueTransportError
    assert "HTTP 500" in str(error) and len(str(error)) < 300


def test_error_from_response_when_body_echoes_signature_then_message_redacts_it():
    body = b"<html>GET /fapi/v1/order?symbol=BTCUSDT&signature=deadbeefcafe&x=1</html>"
    error = _error(502, body, placement=False)
    assert isinstance(error, VenueTransportError)
    assert "deadbeefcafe" not in str(error) and "<redacted>" in str(error)


def test_error_from_response_when_403_then_rejected_waf_block():
    error = _error(403, b"<html>Forbidden</html>")
    assert type(error) is VenueRejectedError and error.reason is RejectReason.INVALID
    assert "WAF" in str(error)


def test_error_from_response_when_401_without_code_then_auth_error():
    assert isinstance(_error(401, b"Unauthorized"), VenueAuthError)


@pytest.mark.parametrize(
    "body",
    [b'{"orderId": 1, "clientOrderId": "stw-1-42"}', b"[]",
     b'{"code": 200, "msg": "The operation of cancel all open order is done."}', b""],
)
def test_error_from_response_when_2xx_then_none(body: bytes):
    assert _error(200, body) is None


def test_error_from_response_when_2xx_carries_error_object_then_mapped():
    error = _error(200, _body(-2013, "Order does not exist."))
    assert isinstance(error, VenueRejectedError) and error.reason is RejectReason.UNKNOWN_ORDER


def test_used_weight_when_headers_in_any_case_then_counters_by_window():
    headers = {"X-MBX-USED-WEIGHT-1M": "12", "x-mbx-order-count-10s": "3",
               "X-Mbx-Order-Count-1m": "not-a-number", "Content-Type": "application/json"}
    assert used_weight(headers) == {"used-weight-1m": 12, "order-count-10s": 3}
