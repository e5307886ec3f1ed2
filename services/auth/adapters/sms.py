"""Sending SMS through one of several providers, primary first (R-AUTH-2, R-AUTH-3).

``SmsProvider`` is one provider's API; ``TwilioLikeSms`` and ``MessageBirdLikeSms`` are the
two we speak. ``SmsSender`` holds the ordered providers: ``send`` fails over from one to the
next, ``send_with`` uses exactly the provider asked for (a resend "through another
provider", whose name ``other_than`` picks). Sending is not idempotent, so nothing is retried
on the same provider: a time-out may still have delivered, and a second SMS through
another provider is better than none.
"""

import abc
import logging

from services.auth.adapters import DeliveryFailed
from services.auth.adapters._calls import field, observed, post

log = logging.getLogger(__name__)


class SmsProvider(abc.ABC):
    """One SMS provider. ``send(to, text)`` returns the provider's message id or raises
    ``DeliveryFailed``."""

    adapter = "sms"

    def __init__(self, name, base_url, sender, timeout):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.sender = sender
        self.timeout = float(timeout)

    @abc.abstractmethod
    def send(self, to, text):
        """Send ``text`` to the number ``to``; ``DeliveryFailed`` when the provider refused."""

    def __repr__(self):  # never the credentials
        return f"<{type(self).__name__} {self.name} {self.base_url}>"


class TwilioLikeSms(SmsProvider):
    """``POST <base>/2010-04-01/Accounts/<account>/Messages.json``, form-encoded ``To``,
    ``From``, ``Body``, HTTP Basic auth; answers ``{"sid": ...}``."""

    def __init__(self, name, base_url, account, token, sender, timeout):
        super().__init__(name, base_url, sender, timeout)
        self._account = account
        self._token = token

    def send(self, to, text):
        answer = post(
            self.name, f"{self.base_url}/2010-04-01/Accounts/{self._account}/Messages.json", self.timeout,
            data={"To": to, "From": self.sender, "Body": text}, auth=(self._account, self._token),
        )
        return field(self.name, answer, "sid")


class MessageBirdLikeSms(SmsProvider):
    """``POST <base>/messages``, JSON ``{"originator", "recipients", "body"}``, header
    ``Authorization: AccessKey <key>``; answers ``{"id": ...}``."""

    def __init__(self, name, base_url, api_key, sender, timeout):
        super().__init__(name, base_url, sender, timeout)
        self._api_key = api_key

    def send(self, to, text):
        answer = post(
            self.name, f"{self.base_url}/messages", self.timeout,
            json={"originator": self.sender, "recipients": [to], "body": text},
            headers={"Authorization": f"AccessKey {self._api_key}"},
        )
        return field(self.name, answer, "id")


class SmsSender:
    """The SMS providers in order of preference (primary first)."""

    adapter = "sms"

    def __init__(self, providers, observe=None):
        self.providers = list(providers)
        if not self.providers:
            raise ValueError("SmsSender needs at least one provider")
        names = [p.name for p in self.providers]
        if len(set(names)) != len(names):
            raise ValueError(f"provider names must be unique, got {names}")
        self.observe = observe

    @property
    def names(self):
        return [p.name for p in self.providers]

    def _provider(self, name):
        for provider in self.providers:
            if provider.name == name:
                return provider
        raise ValueError(f"unknown SMS provider {name!r} (known: {', '.join(self.names)})")

    def _attempt(self, provider, to, text):
        observed(self.observe, self.adapter, provider.name, lambda: provider.send(to, text))
        return provider.name

    def send(self, to, text):
        """Send through the first provider that accepts; the name of that provider.
        ``DeliveryFailed`` when every provider failed."""
        failures = []
        for provider in self.providers:
            try:
                return self._attempt(provider, to, text)
            except DeliveryFailed as error:
                failures.append(error)
                log.warning(
                    "sms provider failed", extra={"provider": provider.name, "reason": error.reason},
                )
        raise DeliveryFailed(
            ",".join(f.provider for f in failures),
            "every provider failed: " + "; ".join(f"{f.provider}: {f.reason}" for f in failures),
            timed_out=all(f.timed_out for f in failures),
        )

    def send_with(self, name, to, text):
        """Send through provider ``name`` only (no fail-over); returns ``name``."""
        return self._attempt(self._provider(name), to, text)

    def other_than(self, name):
        """The provider after ``name`` in order of preference, wrapping around (``name``
        itself when it is the only one)."""
        names = self.names
        return names[(names.index(self._provider(name).name) + 1) % len(names)]
