"""Health, readiness and the API description."""

import eventlet
from nameko.constants import AMQP_URI_CONFIG_KEY

from common.config import SERVICES
from common.errors import PanelError
from common.rpc import broker_reachable
from gateway.http import http

READY_TIMEOUT_SECONDS = 2.0


class HealthRoutes:
    @http("GET", "/healthz")
    def healthz(self, request):
        """The gateway process is up.
        ---
        get:
          tags: [health]
          responses:
            200:
              content:
                application/json:
                  schema: Health
        """
        return {"status": "ok"}

    @http("GET", "/readyz")
    def readyz(self, request):
        """The broker is reachable and every service answers ``health`` within 2 s.
        ---
        get:
          tags: [health]
          responses:
            200:
              description: ready
              content:
                application/json:
                  schema: Ready
            503:
              description: not ready; ``missing`` names what did not answer
              content:
                application/json:
                  schema: Ready
        """
        services = self.config.get("READY_SERVICES") or list(SERVICES)
        if not broker_reachable(self.config[AMQP_URI_CONFIG_KEY], READY_TIMEOUT_SECONDS):
            return 503, {"status": "not_ready", "broker": "unreachable", "services": {}, "missing": ["broker"]}

        def check(service):
            try:
                getattr(self.cluster, service).health.call(timeout=READY_TIMEOUT_SECONDS)
                return service, "ok"
            except PanelError as error:
                return service, error.code
            except Exception:
                return service, "error"

        pool = eventlet.GreenPool(len(services))
        answers = dict(pool.imap(check, services))
        missing = sorted(name for name, state in answers.items() if state != "ok")
        body = {
            "status": "not_ready" if missing else "ready",
            "broker": "ok",
            "services": answers,
            "missing": missing,
        }
        return (503 if missing else 200), body

    @http("GET", "/api/v1/openapi.json")
    def openapi(self, request):
        """The OpenAPI document of this API.
        ---
        get:
          tags: [docs]
          responses:
            200:
              description: OpenAPI 3 document
        """
        return self.openapi_document
