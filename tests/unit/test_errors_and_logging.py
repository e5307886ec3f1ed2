"""Errors survive the trip over RPC typed; logs are JSON lines without secrets."""

import io
import json
import logging

from nameko.exceptions import deserialize, serialize

from common import context
from common.errors import (
    REMOTE_ERRORS,
    ConcurrencyConflict,
    Conflict,
    NotFound,
    PanelError,
    RateLimited,
    ServiceUnavailable,
    ValidationFailed,
    error_with_code,
)
from common.logging import REDACTED, JsonFormatter, redact
from gateway.http import http_status_of


def over_the_wire(error):
    return deserialize(json.loads(json.dumps(serialize(error))))


def test_errors_cross_rpc_with_their_type_code_and_fields():
    for original in [
        NotFound("no such server"),
        ValidationFailed("bad", fields={"amount": ["Must be at least 20."]}),
        error_with_code(Conflict, "insufficient_funds", "Balance too low.", balance="3.00"),
        RateLimited("slow down", retry_after=42),
        ConcurrencyConflict("moved on", extra={"stream_id": "s-1"}),
    ]:
        received = over_the_wire(original)
        assert type(received) is type(original)
        assert received.to_dict() == original.to_dict()
        assert http_status_of(received) == http_status_of(original)
    assert over_the_wire(RateLimited("x", retry_after=42)).retry_after == 42


def test_every_remote_error_has_its_status_in_the_gateway_map_and_refusals_are_4xx():
    statuses = {cls.__name__: http_status_of(cls()) for cls in REMOTE_ERRORS}
    assert statuses["ConcurrencyConflict"] == 409 and statuses["ServiceUnavailable"] == 503
    assert all(status != 500 for status in statuses.values()), statuses
    assert all((status < 500) == cls.is_refusal for cls, status in zip(REMOTE_ERRORS, statuses.values()))
    assert http_status_of(PanelError("unexpected")) == 500 and not ServiceUnavailable.is_refusal


def test_error_with_code_keeps_the_class_status_but_its_own_code():
    error = error_with_code(Conflict, "out_of_stock", "No unit left.")
    assert http_status_of(error) == 409
    assert error.to_dict() == {"code": "out_of_stock", "message": "No unit left."}


def test_an_error_without_message_uses_its_class_description():
    assert NotFound().message == "No such resource."


def log_line(logger_name, message, **extra):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("auth"))
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info(message, extra=extra)
    finally:
        logger.removeHandler(handler)
    return json.loads(stream.getvalue())


def test_log_lines_are_json_with_the_call_context():
    token = context.bind({"request_id": "req-9", "correlation_id": "corr-9", "user_id": "u-1"})
    try:
        line = log_line("t.ctx", "login accepted", attempt=2)
    finally:
        context.unbind(token)
    assert line["message"] == "login accepted"
    assert line["service"] == "auth"
    assert line["level"] == "info"
    assert (line["request_id"], line["correlation_id"], line["user_id"]) == ("req-9", "corr-9", "u-1")
    assert line["attempt"] == 2


def test_secret_looking_fields_are_redacted_at_any_depth():
    line = log_line(
        "t.redact", "payload",
        password="canary-pw", payload={"code": "123456", "new_password": "x", "status_code": 200,
                                        "nested": [{"api_key": "k", "name": "ok"}]},
        session_token="tok", secret_key="s",
    )
    assert line["password"] == REDACTED
    assert line["session_token"] == REDACTED and line["secret_key"] == REDACTED
    assert line["payload"]["code"] == REDACTED and line["payload"]["new_password"] == REDACTED
    assert line["payload"]["status_code"] == 200
    assert line["payload"]["nested"] == [{"api_key": REDACTED, "name": "ok"}]
    assert "canary" not in json.dumps(line)


def test_redact_leaves_ordinary_values_alone():
    assert redact({"username": "ann", "amount": 20}) == {"username": "ann", "amount": 20}
