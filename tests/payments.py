"""The payments sandbox (deploy/standins/payments/) as a subprocess, with a webhook
receiver in the test process, for tests.

``WebhookReceiver`` is a small threaded HTTP server that records every request it gets
(path, headers, raw body) exactly as a provider sent it, and can be told to answer an error
to the next few. ``running_payments_sandbox(directory, receiver)`` starts the sandbox on a
free port (``sys.executable -m deploy.standins.payments``, output to
``<directory>/payments.log``, test credentials, webhooks to the receiver, short retry
pauses), polls until it answers, yields a ``Sandbox`` handle and stops it. The
``payments_sandbox`` fixture does both once per test module; import it into a test module
(``from tests.payments import payments_sandbox``) and give each test payments of its own.
"""

import contextlib
import itertools
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.standins import START_TIMEOUT
from tests.support import ChildProcess, free_port, wait_for

# What the sandbox accepts (and signs with), given to it explicitly so that an outer
# environment cannot make it disagree with the adapters' config.
CREDENTIALS = {
    "STRIPE_SECRET_KEY": "sk_test_suite",
    "STRIPE_WEBHOOK_SECRET": "whsec_suite",
    "PAYPAL_CLIENT_ID": "suite-paypal-client",
    "PAYPAL_CLIENT_SECRET": "suite-paypal-secret",
    "PAYPAL_WEBHOOK_ID": "WH-SUITE-0001",
    "BITPAY_TOKEN": "suite-bitpay-token",
    "COINBASE_API_KEY": "suite-coinbase-key",
    "COINBASE_WEBHOOK_SECRET": "suite-coinbase-webhook-secret",
    "REVOLUT_API_KEY": "sk_suite_revolut",
    "REVOLUT_WEBHOOK_SECRET": "wsk_suite_revolut",
    "BANK_API_KEY": "suite-bank-key",
    "BANK_WEBHOOK_SECRET": "suite-bank-webhook-secret",
}
BANK_ACCOUNT = {
    "BANK_IBAN": "DE89370400440532013000", "BANK_BIC": "COBADEFFXXX", "BANK_BENEFICIARY": "Suite Hosting GmbH",
}
# Short pauses between delivery attempts keep retry tests quick (the sandbox's own default
# spreads 6 attempts over about 30 s).
RETRY_DELAYS = "0.2,0.4,0.8,1.6,3.2"
WEBHOOK_PATH = "/api/v1/billing/webhooks"
HANG_UP = 0  # a "status" for fail_next: close the connection without answering


@dataclass
class Received:
    """One request the receiver got: what a provider sent, byte for byte."""

    number: int
    provider: str
    path: str
    headers: dict
    body: bytes
    answered: int
    at: float = field(default_factory=time.monotonic)

    def mentions(self, text):
        return text.encode() in self.body


class WebhookReceiver:
    """A threaded HTTP server standing where the gateway's webhook endpoint would be:
    ``POST <url>/<provider>`` is recorded and answered 200 (or what ``fail_next`` asked)."""

    def __init__(self, host="127.0.0.1"):
        self._lock = threading.Lock()
        self._records = []
        self._failures = {}  # provider (or None for any) → [status, …]
        self._numbers = itertools.count(1)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                provider = self.path.rstrip("/").rsplit("/", 1)[-1]
                status = receiver._answer_for(provider)
                with receiver._lock:
                    receiver._records.append(Received(
                        next(receiver._numbers), provider, self.path, dict(self.headers.items()), body, status,
                    ))
                if status == HANG_UP:  # no answer at all: the sender sees the connection drop
                    self.close_connection = True
                    return
                payload = b'{"received": true}' if status < 400 else b'{"error": "receiver told to fail"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format, *args):  # quiet: headers carry signatures
                pass

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), daemon=True)
        self.url = f"http://{host}:{self._server.server_port}{WEBHOOK_PATH}"

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def _answer_for(self, provider):
        with self._lock:
            for key in (provider, None):
                queue = self._failures.get(key)
                if queue:
                    return queue.pop(0)
        return 200

    def fail_next(self, provider=None, count=1, status=500):
        """Answer ``status`` to the next ``count`` webhooks of ``provider`` (any if None);
        ``HANG_UP`` closes the connection without an answer."""
        with self._lock:
            self._failures.setdefault(provider, []).extend([status] * count)

    def clear(self):
        with self._lock:
            self._records.clear()
            self._failures.clear()

    def received(self, provider=None, mentioning=None):
        """What arrived, oldest first (of one provider, whose body names ``mentioning``)."""
        with self._lock:
            records = list(self._records)
        return [
            r for r in records
            if (provider is None or r.provider == provider) and (mentioning is None or r.mentions(mentioning))
        ]

    def wait(self, provider, mentioning, count=1, timeout=10.0):
        """Wait until ``count`` webhooks of ``provider`` naming ``mentioning`` arrived."""

        def enough():
            found = self.received(provider, mentioning)
            return found if len(found) >= count else None

        return wait_for(enough, timeout=timeout, message=f"{count} {provider} webhook(s) for {mentioning}")


class Sandbox:
    """URL, adapter config and helpers of a running sandbox and its receiver."""

    def __init__(self, port, receiver):
        self.url = f"http://127.0.0.1:{port}"
        self.receiver = receiver
        self.config = {"PAYMENTS_BASE_URL": self.url, "PAYMENT_TIMEOUT_SECONDS": 5, **CREDENTIALS}

    def providers(self, observe=None, **overrides):
        from services.billing.adapters.factory import build_payment_providers

        return build_payment_providers(dict(self.config, **overrides), observe=observe)

    def _json(self, method, path, expect, **kwargs):
        answer = requests.request(method, f"{self.url}{path}", timeout=5, **kwargs)
        assert answer.status_code == expect, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json()

    def payment(self, pid):
        return self._json("GET", f"/payments/{pid}", 200)

    def payments(self, **filters):
        return self._json("GET", "/payments", 200, params=filters)

    def complete(self, pid, outcome="succeeded"):
        return self._json("POST", f"/payments/{pid}/complete", 202, json={"outcome": outcome})

    def redeliver(self, pid):
        return self._json("POST", f"/payments/{pid}/redeliver", 202)

    def incoming_transfer(self, reference, amount, currency="EUR"):
        return self._json("POST", "/bank/incoming-transfers", 202,
                          json={"reference": reference, "amount": amount, "currency": currency})

    def webhooks(self, payment_id=None):
        return self._json("GET", "/webhooks", 200, params={"payment_id": payment_id} if payment_id else None)

    def delivery(self, delivery_id, state=None, timeout=15.0):
        """The log record of one delivery (once in ``state``, if given)."""

        def found():
            for record in self.webhooks():
                if record["id"] == delivery_id and (state is None or record["state"] == state):
                    return record
            return None

        return wait_for(found, timeout=timeout, message=f"delivery {delivery_id} in state {state}")

    def control(self, provider, mode, delay=None):
        body = {"provider": provider, "mode": mode}
        if delay is not None:
            body["delay"] = delay
        return self._json("POST", "/control", 200, json=body)

    def reset(self):
        """Every provider answering normally, the receiver empty and answering 200."""
        for provider in self._json("GET", "/control", 200):
            self.control(provider, "ok")
        self.receiver.clear()


def _answers(url):
    try:
        return requests.get(f"{url}/payments", timeout=1).status_code == 200
    except requests.RequestException:
        return False


@contextlib.contextmanager
def running_payments_sandbox(directory, receiver):
    """Start the sandbox sending webhooks to ``receiver``; yield ``Sandbox``; stop it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = ChildProcess(
        "payments",
        [sys.executable, "-m", "deploy.standins.payments", "--port", str(port),
         "--webhook-base", receiver.url, "--retry-delays", RETRY_DELAYS, "--attempt-timeout", "3"],
        directory / "payments.log", env={**CREDENTIALS, **BANK_ACCOUNT},
    )
    sandbox = Sandbox(port, receiver)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(sandbox.url):
            process.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"payments sandbox did not answer within {START_TIMEOUT}s:\n{process.log_text()}")
            time.sleep(0.05)
        yield sandbox
    finally:
        process.terminate()
        process.stop()


@pytest.fixture(scope="module")
def payments_sandbox(tmp_path_factory):
    """A running sandbox and its webhook receiver, shared by one test module (call
    ``payments_sandbox.reset()`` between tests)."""
    receiver = WebhookReceiver().start()
    try:
        with running_payments_sandbox(tmp_path_factory.mktemp("payments"), receiver) as sandbox:
            yield sandbox
    finally:
        receiver.stop()
