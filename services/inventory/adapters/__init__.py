"""The inventory service's adapters to the outside world (DESIGN.md "The outside world"):
the customers' servers' management controllers (BMCs), spoken to over Redfish with the
``sushy`` client library (bmc.py), built from a server's stored BMC binding and the
service's config by factory.py.

Every adapter call reports a failure as ``BmcError`` — ``BmcUnavailable`` when the BMC did
not answer in time or could not be reached — never as a raw sushy or requests exception, and
reports each call to an optional ``observe(adapter, provider, outcome, seconds)`` hook, e.g.
``PanelMetrics.observe_adapter_call``: adapter ``bmc``, provider ``redfish``, outcome ``ok``,
``failed`` or ``timeout``.
"""


class BmcError(Exception):
    """A server's management controller could not do what was asked.

    ``endpoint`` is the BMC's base URL (without any credentials in it), ``reason`` a short
    phrase safe to log and to show as an operation's failure detail — never a credential or
    an image URL; ``str()`` makes a sentence of it ("The server's management controller
    refused the credentials (HTTP 401)."). ``timed_out`` tells time-outs from other
    failures; ``detail`` is what the BMC said, if anything (its words: may quote URLs, so
    keep it out of what customers see).
    """

    def __init__(self, endpoint, reason, timed_out=False, detail=None):
        super().__init__(endpoint, reason, timed_out)
        self.endpoint = endpoint
        self.reason = reason
        self.timed_out = timed_out
        self.detail = detail

    def __str__(self):
        return f"The server's management controller {self.reason}."


class BmcUnavailable(BmcError):
    """The BMC did not answer within the time limit, or could not be reached at all."""
