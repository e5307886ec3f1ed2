"""Schemathesis over the whole API (issue 20): every operation of the OpenAPI document the
gateway serves, fuzzed against the running stack (``make run``'s) with a logged-in
customer's session, under every check that applies — no server error, status codes,
content types, headers and response bodies exactly as documented, invalid input refused
(negative data), valid input accepted. A fixed seed and a bounded number of examples per
operation keep it inside the CI budget; any failure fails the build.

The SSE stream is left out (a response that never ends). The two logouts get a fresh
session of the second customer for every example, so they never end the session the
other operations run with.

Run alone: ``.venv/bin/python -m pytest tests/e2e/test_api_contract.py``; more examples:
``API_FUZZ_EXAMPLES=100``.
"""

import os
import re

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from gateway.openapi import build_spec
from gateway.service import GatewayService
from tests.stack import running_stack
from tests.support import wait_for

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "30"))
# The throttled entrance (login, 2FA, password recovery) and the session enders get fewer.
FEW_EXAMPLES = max(3, EXAMPLES // 5)
ENTRANCE = r"^/api/v1/auth/(login|2fa/verify|2fa/resend|password/.*|logout.*)$"
SESSION_ENDERS = {"/api/v1/auth/logout", "/api/v1/auth/logout/everywhere"}

document = schemathesis.openapi.from_dict(build_spec(GatewayService))
document.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
document = document.exclude(path="/api/v1/notifications/stream")
entrance = document.include(path_regex=ENTRANCE)
everything_else = document.exclude(path_regex=ENTRANCE)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("var"), vhost_prefix="panel-fuzz") as info:
        yield info


def session_of(stack, customer):
    """A session token of ``customer`` (through 2FA by SMS when it has it on)."""
    api = f"{stack['gateway']}/api/v1"
    inbox = f"{stack['sms_inbox']}/messages"
    seen = len(requests.get(inbox, timeout=5).json())
    answer = requests.post(f"{api}/auth/login", json={"username": customer["username"],
                                                       "password": customer["password"]}, timeout=30)
    assert answer.status_code == 200, answer.text
    if answer.json()["status"] == "ok":
        return answer.json()["token"]
    wait_for(lambda: len(requests.get(inbox, timeout=5).json()) > seen, timeout=10, message="the SMS")
    code = re.search(r"\d{6}", requests.get(inbox, timeout=5).json()[-1]["text"]).group()
    verified = requests.post(f"{api}/auth/2fa/verify", json={"challenge_id": answer.json()["challenge_id"],
                                                              "code": code}, timeout=30)
    assert verified.status_code == 200, verified.text
    return verified.json()["token"]


@pytest.fixture(scope="module")
def session(stack):
    """The session every operation but the logouts runs with: the first customer's."""
    return session_of(stack, stack["users"][0])


# Schema-valid requests the API may still refuse, naming only these fields (or giving
# this error code): what depends on an earlier answer (a list's opaque cursor), on the
# customer's data or the deployment (an offer that
# exists in that location, a location with a storage cluster, a webhook address that is
# public, a server of the customer's, a file's real type, a payment provider's signature),
# or on several fields together beyond what the document says (the points of a usage
# period). Everything else schema-valid must be accepted.
STATEFUL_FIELDS = {
    ("POST", "/api/v1/billing/webhooks/{provider}"): {"invalid_signature"},
    ("GET", "/api/v1/servers"): {"cursor"},
    ("GET", "/api/v1/orders"): {"cursor"},
    ("GET", "/api/v1/support/tickets"): {"cursor"},
    ("POST", "/api/v1/orders"): {"offer_id", "location"},
    ("POST", "/api/v1/storage/s3"): {"location"},
    ("GET", "/api/v1/storage/s3/{storage_id}/usage"): {"from", "to", "step"},
    ("POST", "/api/v1/webhooks"): {"url"},
    ("POST", "/api/v1/support/tickets"): {"server_id", "attachments"},
    ("POST", "/api/v1/support/tickets/{ticket_id}/messages"): {"attachments"},
}


def refused_only_for_stateful_fields(ctx, response, case):
    """positive_data_acceptance for the operations of ``STATEFUL_FIELDS``: schema-valid
    data is accepted, or refused (400, 413, 415) naming none but those fields."""
    allowed = STATEFUL_FIELDS[(case.method.upper(), case.path)]
    if case.meta is None or not case.meta.generation.mode.is_positive or response.status_code not in (400, 413, 415):
        return None
    error = response.json().get("error") or {}
    named = set(error.get("fields") or {}) or {error.get("code")}
    if not named <= allowed:
        unexpected = sorted(named - allowed) or "no field"
        raise AssertionError(f"schema-valid data refused with {response.status_code} for {unexpected}: "
                             f"{response.text[:300]}")
    return None


def call_and_validate(case, stack, token):
    kwargs = {}
    if (case.method.upper(), case.path) in STATEFUL_FIELDS:
        kwargs = {"excluded_checks": [positive_data_acceptance], "additional_checks": [refused_only_for_stateful_fields]}
    case.call_and_validate(base_url=stack["gateway"], headers={"Authorization": f"Bearer {token}"}, timeout=30,
                           **kwargs)


FUZZ = dict(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None)


@everything_else.parametrize()
@settings(max_examples=EXAMPLES, **FUZZ)
def test_every_operation_answers_as_documented(case, stack, session):
    call_and_validate(case, stack, session)


@entrance.parametrize()
@settings(max_examples=FEW_EXAMPLES, **FUZZ)
def test_the_entrance_answers_as_documented(case, stack, session):
    token = session_of(stack, stack["users"][1]) if case.path in SESSION_ENDERS else session
    call_and_validate(case, stack, token)


def test_the_stack_logged_no_error_while_it_was_fuzzed(stack):
    """Runs last: every refusal above was an answer, not a crash nor a step done twice
    (an order step meeting an operation already finished logged an error: issue 20)."""
    errors = [f"{log.name}: {line[:300]}" for log in sorted((stack["var_dir"] / "log").glob("*.log"))
              for line in log.read_text(errors="replace").splitlines() if '"level": "error"' in line]
    assert errors == []
