"""The gateway plus two benchmark routes that make exactly one RPC each.

- ``GET /bench/rpc`` calls ``auth.health`` through the gateway's own
  ``TimedClusterRpcProxy`` (the path every real route takes: ``common.rpc_client``);
- ``GET /bench/rpc-nameko`` calls ``authnameko.health`` through
  ``NamekoClusterRpcProxy`` (nameko's own ``RpcProxy`` machinery, the previous client) on
  a second auth process that sends nameko's default replies (``bench.nameko_auth``).

Used only by ``bench.rpc``: run with
``nameko run --config deploy/config/gateway.yaml bench.gateway_probe:BenchGateway``.
"""

from bench.nameko_cluster import NamekoClusterRpcProxy
from gateway.http import http
from gateway.service import GatewayService


class BenchGateway(GatewayService):
    name = "gateway"

    nameko_cluster = NamekoClusterRpcProxy()

    @http("GET", "/bench/rpc")
    def bench_rpc(self, request):
        """One RPC (``auth.health``) behind one HTTP request, through our client."""
        return self.cluster.auth.health()

    @http("GET", "/bench/rpc-nameko")
    def bench_rpc_nameko(self, request):
        """One RPC (``authnameko.health``) through nameko's ``RpcProxy``."""
        return self.nameko_cluster.authnameko.health()
