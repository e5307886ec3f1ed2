"""The RPC client the gateway used before ``common.rpc_client``: nameko's own ``RpcProxy``
(a publisher per call, persistent requests, a confirm per request) behind the same
``cluster.<service>.<method>(…)`` interface with a time limit per call. Only the benchmarks
use it, as the plain-nameko baseline of ``bench.rpc`` (``bench.gateway_probe``)."""

import eventlet
from nameko.exceptions import UnknownService
from nameko.rpc import RpcProxy, ServiceProxy

from common.errors import ServiceUnavailable
from common.rpc import DEFAULT_TIMEOUT_SECONDS


class NamekoTimedMethodProxy:
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


class NamekoTimedServiceProxy:
    def __init__(self, proxy, timeout):
        self._proxy = proxy
        self._timeout = timeout

    def __getattr__(self, name):
        return NamekoTimedMethodProxy(getattr(self._proxy, name), self._proxy.service_name, name, self._timeout)


class NamekoTimedCluster:
    """``cluster.<service>.<method>(...)`` with a time limit per call."""

    def __init__(self, worker_ctx, reply_listener, timeout, options):
        self._worker_ctx = worker_ctx
        self._reply_listener = reply_listener
        self._timeout = timeout
        self._options = options

    def __getattr__(self, service):
        proxy = ServiceProxy(self._worker_ctx, service, self._reply_listener, **self._options)
        return NamekoTimedServiceProxy(proxy, self._timeout)


class NamekoClusterRpcProxy(RpcProxy):
    """The previous ``TimedClusterRpcProxy``, on nameko's own ``RpcProxy`` machinery (a
    publisher per call, persistent requests, a confirm per request). Kept as the baseline
    of ``bench.rpc``; the services use ``common.rpc.TimedClusterRpcProxy``."""

    def __init__(self, timeout=None, **options):
        super().__init__(target_service=None, **options)
        self.timeout = timeout

    def get_dependency(self, worker_ctx):
        timeout = self.timeout or float(
            self.container.config.get("RPC_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS)
        )
        return NamekoTimedCluster(worker_ctx, self.rpc_reply_listener, timeout, self.options)
