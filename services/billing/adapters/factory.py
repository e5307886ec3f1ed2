"""Builds the payment providers from the billing service's nameko config
(``deploy/config/billing.yaml`` values, each overridable from the environment).

Keys and defaults (the defaults point at the dev stack's payments sandbox,
deploy/standins/payments/):

- ``PAYMENTS_BASE_URL`` http://127.0.0.1:9207 — each provider's API is
  ``<PAYMENTS_BASE_URL>/<prefix>`` (prefixes ``stripe``, ``paypal``, ``bitpay``,
  ``coinbase``, ``revolut``, ``bank``) unless its own URL is set: ``STRIPE_API_URL``,
  ``PAYPAL_API_URL``, ``BITPAY_API_URL``, ``COINBASE_API_URL``, ``REVOLUT_API_URL``,
  ``BANK_WIRE_API_URL`` (e.g. https://api.stripe.com, https://api-m.paypal.com,
  https://bitpay.com, https://api.commerce.coinbase.com, https://merchant.revolut.com).
- Secrets: ``STRIPE_SECRET_KEY``, ``STRIPE_WEBHOOK_SECRET``, ``PAYPAL_CLIENT_ID``,
  ``PAYPAL_CLIENT_SECRET``, ``PAYPAL_WEBHOOK_ID``, ``BITPAY_TOKEN``, ``COINBASE_API_KEY``,
  ``COINBASE_WEBHOOK_SECRET``, ``REVOLUT_API_KEY``, ``REVOLUT_WEBHOOK_SECRET``,
  ``BANK_API_KEY``, ``BANK_WEBHOOK_SECRET``. All are required: one absent, null or empty
  stops the service from starting (``MissingCredentials`` naming them), unless
  ``DEV_CREDENTIALS`` is true (the dev stack and the tests only), when it stands for the
  sandbox's published dev value (``DEV_SECRETS``). A webhook secret that fell back to a
  public value would let anyone sign a payment notice.
- ``BITPAY_NOTIFICATION_URL`` (none): where BitPay should send its IPNs (BitPay has no
  dashboard setting for it; the sandbox ignores it and sends to its ``--webhook-base``).
- ``PAYMENT_TIMEOUT_SECONDS`` 10: the time limit of each call to a provider.
"""

from common.config import Credentials
from services.billing.adapters.bank_wire import BankWirePayments
from services.billing.adapters.bitpay import BitPayPayments
from services.billing.adapters.coinbase import CoinbasePayments
from services.billing.adapters.methods import METHODS
from services.billing.adapters.paypal import PayPalPayments
from services.billing.adapters.revolut import RevolutPayments
from services.billing.adapters.stripe import StripePayments

DEFAULT_BASE_URL = "http://127.0.0.1:9207"
DEFAULT_TIMEOUT_SECONDS = 10
# provider → (its URL key, its path prefix on the sandbox)
API_URLS = {
    "paypal": ("PAYPAL_API_URL", "paypal"),
    "stripe": ("STRIPE_API_URL", "stripe"),
    "bank_wire": ("BANK_WIRE_API_URL", "bank"),
    "bitpay": ("BITPAY_API_URL", "bitpay"),
    "coinbase": ("COINBASE_API_URL", "coinbase"),
    "revolut": ("REVOLUT_API_URL", "revolut"),
}
# The sandbox's dev credentials (deploy/standins/README.md); real ones come from the environment.
DEV_SECRETS = {
    "STRIPE_SECRET_KEY": "sk_test_dev",
    "STRIPE_WEBHOOK_SECRET": "whsec_dev",
    "PAYPAL_CLIENT_ID": "dev-paypal-client",
    "PAYPAL_CLIENT_SECRET": "dev-paypal-secret",
    "PAYPAL_WEBHOOK_ID": "WH-DEV-0001",
    "BITPAY_TOKEN": "dev-bitpay-token",
    "COINBASE_API_KEY": "dev-coinbase-key",
    "COINBASE_WEBHOOK_SECRET": "dev-coinbase-webhook-secret",
    "REVOLUT_API_KEY": "sk_dev_revolut",
    "REVOLUT_WEBHOOK_SECRET": "wsk_dev_revolut",
    "BANK_API_KEY": "dev-bank-key",
    "BANK_WEBHOOK_SECRET": "dev-bank-webhook-secret",
}
assert list(API_URLS) == list(METHODS)


def api_url(config, provider):
    """The base URL of ``provider``'s API under ``config``."""
    key, prefix = API_URLS[provider]
    if config.get(key):
        return str(config[key]).rstrip("/")
    base = config.get("PAYMENTS_BASE_URL") or DEFAULT_BASE_URL
    return f"{str(base).rstrip('/')}/{prefix}"


def build_payment_providers(config, observe=None):
    """``{name: provider}`` for every method of ``METHODS``, in that order;
    ``observe(adapter, provider, outcome, seconds)`` is told of every call to a provider."""
    timeout = config.get("PAYMENT_TIMEOUT_SECONDS")
    timeout = float(DEFAULT_TIMEOUT_SECONDS if timeout is None else timeout)
    if timeout <= 0:
        raise ValueError("PAYMENT_TIMEOUT_SECONDS must be positive")

    secret = Credentials(config, DEV_SECRETS, "billing")
    providers = [
        PayPalPayments(
            api_url(config, "paypal"), secret("PAYPAL_CLIENT_ID"), secret("PAYPAL_CLIENT_SECRET"),
            secret("PAYPAL_WEBHOOK_ID"), timeout, observe=observe,
        ),
        StripePayments(
            api_url(config, "stripe"), secret("STRIPE_SECRET_KEY"), secret("STRIPE_WEBHOOK_SECRET"),
            timeout, observe=observe,
        ),
        BankWirePayments(
            api_url(config, "bank_wire"), secret("BANK_API_KEY"), secret("BANK_WEBHOOK_SECRET"),
            timeout, observe=observe,
        ),
        BitPayPayments(
            api_url(config, "bitpay"), secret("BITPAY_TOKEN"), timeout, observe=observe,
            notification_url=config.get("BITPAY_NOTIFICATION_URL") or None,
        ),
        CoinbasePayments(
            api_url(config, "coinbase"), secret("COINBASE_API_KEY"), secret("COINBASE_WEBHOOK_SECRET"),
            timeout, observe=observe,
        ),
        RevolutPayments(
            api_url(config, "revolut"), secret("REVOLUT_API_KEY"), secret("REVOLUT_WEBHOOK_SECRET"),
            timeout, observe=observe,
        ),
    ]
    secret.check()
    return {provider.name: provider for provider in providers}
