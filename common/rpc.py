"""RPC to another service with a time limit.

nameko's ``RpcProxy`` waits for a reply forever. ``TimedRpcProxy`` is the same wire protocol
(services keep plain ``@rpc`` entrypoints; the call context still travels in headers) with
a limit per call: past it the caller gets ``ServiceUnavailable`` — the gateway's 503 — and
the late reply, if it ever comes, is dropped. Calling a service that has no queue (never
started) is ``ServiceUnavailable`` at once.
"""

import eventlet
from kombu import Connection
from nameko.exceptions import UnknownService
from nameko.rpc import Rpc, RpcProxy, ServiceProxy

from common.errors import PanelError, ServiceUnavailable

DEFAULT_TIMEOUT_SECONDS = 5.0


class PanelRpc(Rpc):
    """``@rpc`` for which a ``PanelError`` (a refusal the caller is meant to see, such as
    not_found or invalid_credentials) is expected: nameko does not log it as a crash."""

    def __init__(self, expected_exceptions=(), **kwargs):
        if not isinstance(expected_exceptions, tuple):
            expected_exceptions = (expected_exceptions,)
        super().__init__(expected_exceptions=expected_exceptions + (PanelError,), **kwargs)


rpc = PanelRpc.decorator


def broker_reachable(amqp_uri, timeout):
    """True when a connection to the broker opens within ``timeout`` seconds."""
    try:
        with Connection(amqp_uri, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
        return True
    except Exception:  # any failure to connect means "not reachable"
        return False


class TimedMethodProxy:
    def __init__(self, method_proxy, service, method, timeout):
        self._method_proxy = method_proxy
        self._service = service
        self._method = method
        self._timeout = timeout

    def __call__(self, *args, **kwargs):
        return self.call(*args, timeout=self._timeout, **kwargs)

    def call(self, *args, timeout, **kwargs):
        unavailable = ServiceUnavailable(
            f"the {self._service} service did not answer within {timeout:g}s",
            extra={"service": self._service},
        )
        reply = None
        try:
            with eventlet.Timeout(timeout, unavailable):
                reply = self._method_proxy.call_async(*args, **kwargs)
                return reply.result()
        except UnknownService:
            raise ServiceUnavailable(
                f"the {self._service} service is not running", extra={"service": self._service}
            )
        except ServiceUnavailable:
            if reply is not None:
                self._forget(reply)
            raise

    def _forget(self, reply):
        """Drop the waiting slot of a reply that timed out, so that calls to a dead service
        do not pile up in the reply listener."""
        events = self._method_proxy.reply_listener._reply_events
        for correlation_id, event in list(events.items()):
            if event is reply.reply_event:
                events.pop(correlation_id, None)


class TimedServiceProxy:
    def __init__(self, proxy, timeout):
        self._proxy = proxy
        self._timeout = timeout

    def __getattr__(self, name):
        return TimedMethodProxy(getattr(self._proxy, name), self._proxy.service_name, name, self._timeout)


class TimedCluster:
    """``cluster.<service>.<method>(...)`` with a time limit per call."""

    def __init__(self, worker_ctx, reply_listener, timeout, options):
        self._worker_ctx = worker_ctx
        self._reply_listener = reply_listener
        self._timeout = timeout
        self._options = options

    def __getattr__(self, service):
        proxy = ServiceProxy(self._worker_ctx, service, self._reply_listener, **self._options)
        return TimedServiceProxy(proxy, self._timeout)


class TimedClusterRpcProxy(RpcProxy):
    """Injects a ``TimedCluster``: every service reachable, every call with a time limit
    (``timeout`` seconds, default the ``RPC_TIMEOUT_SECONDS`` config value, else 5 s)."""

    def __init__(self, timeout=None, **options):
        super().__init__(target_service=None, **options)
        self.timeout = timeout

    def get_dependency(self, worker_ctx):
        timeout = self.timeout or float(
            self.container.config.get("RPC_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS)
        )
        return TimedCluster(worker_ctx, self.rpc_reply_listener, timeout, self.options)
