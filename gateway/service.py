"""The gateway service: every HTTP route of API.md, one mixin per area.

Run: ``nameko run --config deploy/config/gateway.yaml gateway.service``.
"""

import functools

from nameko.dependency_providers import Config

from common.metrics import Metrics
from common.rpc import TimedClusterRpcProxy, rpc
from common.service import CallContext
from gateway.idempotency import Idempotency
from gateway.live import LiveNotifications
from gateway.openapi import build_spec
from gateway.routes.auth import AuthRoutes
from gateway.routes.billing import BillingRoutes
from gateway.routes.health import HealthRoutes
from gateway.routes.notifications import NotificationRoutes
from gateway.routes.orders import OrderRoutes
from gateway.routes.panel import PanelRoutes
from gateway.routes.servers import ServerRoutes
from gateway.routes.storage import StorageRoutes
from gateway.routes.support import SupportRoutes
from gateway.routes.tokens import TokenRoutes
from gateway.routes.webhooks import WebhookRoutes
from gateway.sessions import Sessions


class GatewayService(HealthRoutes, AuthRoutes, ServerRoutes, NotificationRoutes, BillingRoutes, OrderRoutes,
                     StorageRoutes, SupportRoutes, TokenRoutes, WebhookRoutes, PanelRoutes):
    name = "gateway"

    config = Config()
    call_context = CallContext()
    metrics = Metrics()
    cluster = TimedClusterRpcProxy()
    sessions = Sessions()
    idempotency = Idempotency()
    live = LiveNotifications()

    @rpc
    def health(self):
        """Liveness over RPC (also lets the process stop promptly on SIGTERM)."""
        return {"service": "gateway", "status": "ok"}

    @property
    def openapi_document(self):
        return openapi_document(type(self))


@functools.cache
def openapi_document(service_cls):
    """Built once per process from the routes and schemas of the running gateway class."""
    return build_spec(service_cls)
