"""Webhook deliveries over HTTP: one POST per attempt, with a time limit, a limit on how
much of the answer is read, no redirects followed, and never to an address the SSRF guard
refuses (``webhook_rules.address_refused``: loopback, link-local, private … unless
``allow_private`` for the dev stack and tests).

The host is resolved and every address it resolves to is checked before the request; a
DNS answer that changes between the check and the connection (rebinding) is the one gap
left, closed in production by an egress proxy or firewall in front of the service.
"""

import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from services.notify.webhook_rules import address_refused

MAX_RESPONSE_BYTES = 64 * 1024


@dataclass
class Outcome:
    """What one attempt came to: the receiver's status code, or why there was none."""

    status_code: int = None
    error: str = None
    seconds: float = 0.0

    @property
    def delivered(self):
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender:
    def __init__(self, allow_private=False, connect_timeout=3.0, read_timeout=5.0,
                 max_response_bytes=MAX_RESPONSE_BYTES, resolve=socket.getaddrinfo, user_agent="HostPanel-Webhooks/1"):
        self.allow_private = allow_private
        self.timeout = (connect_timeout, read_timeout)
        self.max_response_bytes = max_response_bytes
        self.resolve = resolve
        self.http = requests.Session()
        self.http.headers["User-Agent"] = user_agent

    def refusal(self, url):
        """Why ``url`` may not be called (its host resolves to a refused address), or None."""
        parts = urlsplit(url)
        try:
            infos = self.resolve(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                                 proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError) as exc:
            return f"the host does not resolve ({exc.__class__.__name__})"
        for info in infos:
            why = address_refused(info[4][0], self.allow_private)
            if why:
                return f"{parts.hostname} resolves to {info[4][0]}: {why}"
        return None

    def send(self, url, headers, body):
        started = time.monotonic()
        refused = self.refusal(url)
        if refused:
            return Outcome(error=f"refused: {refused}", seconds=time.monotonic() - started)
        try:
            response = self.http.post(url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False,
                                      stream=True)
            try:
                read = 0
                for chunk in response.iter_content(8192):
                    read += len(chunk)
                    if read >= self.max_response_bytes:
                        break  # the status is what counts; the rest is not read
            finally:
                response.close()
            return Outcome(status_code=response.status_code, seconds=time.monotonic() - started)
        except requests.Timeout:
            return Outcome(error=f"timed out after {self.timeout[1]:g} s", seconds=time.monotonic() - started)
        except requests.RequestException as exc:
            return Outcome(error=f"could not connect ({exc.__class__.__name__})", seconds=time.monotonic() - started)
