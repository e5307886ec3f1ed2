"""The gateway plus one benchmark route that makes exactly one RPC.

``GET /bench/rpc`` calls ``auth.health`` through the gateway's own ``TimedClusterRpcProxy``
(the path every real route takes) and returns its answer. Used only by ``bench.rpc``:
run with ``nameko run --config deploy/config/gateway.yaml bench.gateway_probe:BenchGateway``.
"""

from gateway.http import http
from gateway.service import GatewayService


class BenchGateway(GatewayService):
    name = "gateway"

    @http("GET", "/bench/rpc")
    def bench_rpc(self, request):
        """One RPC (``auth.health``) behind one HTTP request."""
        return self.cluster.auth.health()
