"""The payments sandbox: one process playing the six payment providers of the billing
service (services/billing/adapters/), each under a path prefix, in the shape of its real
API — and sending each provider's signed webhooks when a payment is completed.

One module per provider (stripe, paypal, bitpay, coinbase, revolut, bank_wire: routes,
signatures, webhook shapes) on ``base`` (the payment store, webhook deliveries, the
endpoints for people and tests). Credentials from the environment with dev defaults
(deploy/standins/README.md). Nothing here logs a credential or a signature (request lines
are logged with ``token=`` masked).

    python -m deploy.standins.payments [--host 127.0.0.1] [--port 9207]
        [--webhook-base http://127.0.0.1:8000/api/v1/billing/webhooks]
"""

import argparse
import logging

from deploy.standins.base import serve, setting
from deploy.standins.payments.bank_wire import BankWire
from deploy.standins.payments.base import (
    DEFAULT_ATTEMPT_TIMEOUT,
    DEFAULT_RETRY_DELAYS,
    Deliveries,
    MaskTokens,
    PaymentsSandbox,
    Provider,
)
from deploy.standins.payments.bitpay import BitPay
from deploy.standins.payments.coinbase import Coinbase
from deploy.standins.payments.paypal import PayPal
from deploy.standins.payments.revolut import Revolut
from deploy.standins.payments.stripe import Stripe

# In the order /control lists them.
PROVIDER_CLASSES = (PayPal, Stripe, BankWire, BitPay, Coinbase, Revolut)
PROVIDERS = tuple(cls.name for cls in PROVIDER_CLASSES)
# setting name → dev default; the billing adapters (services/billing/adapters/factory.py)
# default to the same credentials.
DEFAULTS = {name: default for cls in PROVIDER_CLASSES for name, default in cls.defaults.items()}
DEFAULT_PORT = 9207
DEFAULT_WEBHOOK_BASE = "http://127.0.0.1:8000/api/v1/billing/webhooks"

__all__ = [
    "DEFAULTS", "DEFAULT_PORT", "DEFAULT_WEBHOOK_BASE", "PROVIDERS", "PROVIDER_CLASSES",
    "Deliveries", "PaymentsSandbox", "Provider", "build", "main",
]


def build(deliveries, settings=None):
    """The sandbox app of the six providers; ``settings`` default to the environment's."""
    if settings is None:
        settings = {name: setting(name, default) for name, default in DEFAULTS.items()}
    return PaymentsSandbox(PROVIDER_CLASSES, settings, deliveries)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--webhook-base", default=DEFAULT_WEBHOOK_BASE,
                        help="webhooks go to <webhook-base>/<provider>")
    parser.add_argument("--retry-delays", default=",".join(f"{d:g}" for d in DEFAULT_RETRY_DELAYS),
                        help="seconds between delivery attempts, comma-separated")
    parser.add_argument("--attempt-timeout", type=float, default=DEFAULT_ATTEMPT_TIMEOUT,
                        help="seconds to wait for the receiver's answer to one attempt")
    args = parser.parse_args(argv)
    delays = tuple(float(d) for d in args.retry_delays.split(",") if d.strip())
    logging.getLogger("werkzeug").addFilter(MaskTokens())
    deliveries = Deliveries(args.webhook_base, delays, args.attempt_timeout)
    serve(build(deliveries), args.host, args.port, lambda port: (
        f"payments sandbox listening on http://{args.host}:{port} "
        f"(providers at /stripe /paypal /bitpay /coinbase /revolut /bank; payments /payments; "
        f"webhooks to {deliveries.webhook_base}/<provider>, log /webhooks; control /control)"
    ), also_stop=(deliveries.stop,))
