"""The auth service's adapters to the outside world (DESIGN.md "The outside world"): SMS
providers with fail-over (sms.py), a voice-call provider that dictates codes (voice.py), a
mail server (mail.py), all built from config by factory.py.

Every adapter reports a failed delivery as ``DeliveryFailed``, whatever went wrong (time-out,
refused connection, 4xx, 5xx, an answer it cannot read), and reports each attempt to an
optional ``observe(adapter, provider, outcome, seconds)`` hook, e.g.
``PanelMetrics.observe_adapter_call``; outcome is ``ok``, ``failed`` or ``timeout``.
"""


class DeliveryFailed(Exception):
    """A message or call could not be handed to the provider.

    ``provider`` names who failed (several, comma-separated, when every provider of a
    fail-over failed), ``reason`` says why in words safe to log: never a credential, a
    phone number's message or a code. ``timed_out`` tells time-outs from other failures.
    """

    def __init__(self, provider, reason, timed_out=False):
        super().__init__(provider, reason, timed_out)
        self.provider = provider
        self.reason = reason
        self.timed_out = timed_out

    def __str__(self):
        return f"delivery through {self.provider} failed: {self.reason}"
