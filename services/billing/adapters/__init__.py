"""The billing service's adapters to the payment providers (DESIGN.md "The outside world",
SEED R-BILL-2/3): one module per provider (stripe.py, paypal.py, bitpay.py, coinbase.py,
revolut.py, bank_wire.py), the methods customers choose from (methods.py), all built from
config by factory.py.

Every provider has ``name``, ``create_payment(reference, amount, currency, return_url)``,
``parse_webhook(headers, raw_body, now)`` and ``retrieve_payment(provider_payment_id)``:

- ``create_payment`` returns ``{"provider_payment_id", "redirect_url"}`` (bank wire:
  ``{"provider_payment_id", "instructions"}``) or raises ``PaymentProviderError``; a
  ``ValueError`` before any call for an amount, currency or reference it cannot send.
- ``parse_webhook`` checks the notification the way the provider's real scheme does (an
  HMAC over the raw body, or a call back to the provider) and returns a ``PaymentNotice``;
  ``None`` for an authentic notification that settles nothing (an event type we do not act
  on, an invoice not final yet): answer it 2xx so that the provider stops sending it. It
  raises ``WebhookRejected`` for a notification not to be trusted (answer 400), and
  ``PaymentProviderError`` when the provider could not be asked to confirm it (answer 5xx:
  the provider sends it again later).
- ``retrieve_payment`` asks the provider's API for one payment by the id ``create_payment``
  returned (to settle a top-up whose webhook never came) and reads it as ``parse_webhook``
  reads a notification: a ``PaymentNotice`` once it is final (succeeded, or failed: expired,
  cancelled, declined, voided), ``None`` while it is not (open, pending, waiting for the
  customer). It raises ``PaymentProviderError`` when the provider could not be asked (a
  time-out, a 5xx, credentials refused), does not know the id (404) or answered something
  unreadable: keep the top-up pending and ask again later; a ``ValueError`` before any call
  for an id that cannot be one.

Each call to a provider is reported to an optional ``observe(adapter, provider, outcome,
seconds)`` hook (adapter ``payments``; outcome ``ok``, ``failed`` or ``timeout``), e.g.
``PanelMetrics.observe_adapter_call``. Nothing here logs a credential or a signature.
"""

from dataclasses import dataclass


class PaymentProviderError(Exception):
    """A provider could not be asked, or refused what we asked.

    ``provider`` names it, ``reason`` says why in words safe to log (never a key, a token,
    a signature or a URL carrying one); ``timed_out`` tells time-outs from other failures.
    """

    def __init__(self, provider, reason, timed_out=False):
        super().__init__(provider, reason, timed_out)
        self.provider = provider
        self.reason = reason
        self.timed_out = timed_out

    def __str__(self):
        return f"payment provider {self.provider} failed: {self.reason}"


class WebhookRejected(Exception):
    """A notification that must not be acted on.

    ``reason`` is one of ``REASONS``: ``bad_signature`` (missing, unreadable or wrong
    signature), ``stale`` (signed too long ago, or in the future), ``malformed`` (authentic
    but not the shape we know), ``unverified`` (the provider, asked back, did not confirm
    it). ``detail`` adds words safe to log; never the signature or the secret.
    """

    REASONS = ("bad_signature", "stale", "malformed", "unverified")

    def __init__(self, reason, provider=None, detail=None):
        if reason not in self.REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(reason, provider, detail)
        self.reason = reason
        self.provider = provider
        self.detail = detail

    def __str__(self):
        who = f" from {self.provider}" if self.provider else ""
        why = f": {self.detail}" if self.detail else ""
        return f"webhook{who} rejected ({self.reason}){why}"


SUCCEEDED, FAILED = "succeeded", "failed"


@dataclass(frozen=True)
class PaymentNotice:
    """What a provider told us about one payment, once verified.

    ``status`` is ``succeeded`` or ``failed``; ``amount`` a text with two decimals
    (``"25.00"``) of what the provider says was paid; ``currency`` upper case (``"EUR"``);
    ``reference`` our top-up id as we passed it to ``create_payment`` (``None`` when the
    provider did not echo it back).
    """

    provider: str
    provider_payment_id: str
    status: str
    amount: str
    currency: str
    reference: str | None
