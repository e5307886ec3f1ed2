"""Prometheus metrics: every metric name of the panel is declared here, once.

``Metrics`` is a nameko DependencyProvider with a registry of its own (not the global one,
so several containers in one test process never collide). It serves ``/metrics`` on the
service's ``METRICS_PORT`` (0 picks a free port; unset or ``off`` disables it), times every
entrypoint by name and outcome, measures event handler lag, and lets other providers add
gauges read at scrape time (outbox backlog, operations by status).
"""

import logging
import time
import weakref
from datetime import datetime, timezone

import eventlet
from eventlet import wsgi
from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc
from nameko.web.handlers import HttpRequestHandler
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    make_wsgi_app,
)

from common.errors import PanelError

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800)


def entrypoint_kind(entrypoint):
    if isinstance(entrypoint, Rpc):
        return "rpc"
    if isinstance(entrypoint, HttpRequestHandler):
        return "http"
    if isinstance(entrypoint, EventHandler):
        return "event"
    return type(entrypoint).__name__.lower()


def outcome_of(exc_info):
    if exc_info is None:
        return "ok"
    error = exc_info[1]
    if isinstance(error, PanelError) and error.is_refusal:
        return "rejected"
    return "error"


class PanelMetrics:
    """The metric objects of one service, on a registry of its own."""

    def __init__(self, service):
        self.service = service
        self.registry = CollectorRegistry()
        r = self.registry
        self.entrypoint_calls = Counter(
            "panel_entrypoint_calls_total", "Entrypoint calls by name, kind and outcome.",
            ["service", "entrypoint", "kind", "outcome"], registry=r,
        )
        self.entrypoint_duration = Histogram(
            "panel_entrypoint_duration_seconds", "Entrypoint latency.",
            ["service", "entrypoint", "kind"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.event_lag = Histogram(
            "panel_event_handler_lag_seconds",
            "Time from an event's recording to the start of its handling.",
            ["service", "source", "event_type"], buckets=LAG_BUCKETS, registry=r,
        )
        self.refusals = Counter(
            "panel_refusals_total", "Calls refused with a PanelError, by entrypoint and error code "
            "(invalid_credentials, invalid_code, rate_limited, invalid_signature, …).",
            ["service", "entrypoint", "code"], registry=r,
        )
        self.outbox_published = Counter(
            "panel_outbox_published_total", "Integration events published by the outbox relay.",
            ["service"], registry=r,
        )
        self.outbox_failures = Counter(
            "panel_outbox_publish_failures_total", "Outbox relay runs that failed to publish.",
            ["service"], registry=r,
        )
        self.outbox_backlog = Gauge(
            "panel_outbox_backlog_events", "Integration events recorded but not yet published.",
            ["service"], registry=r,
        )
        self.operations = Gauge(
            "panel_operations", "Operations of this service by status.",
            ["service", "status"], registry=r,
        )
        self.oldest_active_operation = Gauge(
            "panel_operation_oldest_active_seconds",
            "Age of the oldest operation still pending or running (0 when none).",
            ["service", "status"], registry=r,
        )
        self.adapter_calls = Counter(
            "panel_adapter_calls_total", "Calls to the outside world by adapter, provider and outcome.",
            ["service", "adapter", "provider", "outcome"], registry=r,
        )
        self.adapter_duration = Histogram(
            "panel_adapter_duration_seconds", "Latency of calls to the outside world.",
            ["service", "adapter", "provider"], buckets=LATENCY_BUCKETS, registry=r,
        )

    def observe_adapter_call(self, adapter, provider, outcome, seconds):
        self.adapter_calls.labels(self.service, adapter, provider, outcome).inc()
        self.adapter_duration.labels(self.service, adapter, provider).observe(seconds)


class Metrics(DependencyProvider):
    """Injects the service's ``PanelMetrics`` and serves them over HTTP."""

    def __init__(self):
        self._started = weakref.WeakKeyDictionary()
        self._series = {}  # (entrypoint, outcome) -> (calls counter, duration histogram)
        self._server_thread = None
        self._socket = None
        self.port = None
        self.collectors = []

    def setup(self):
        self._series = {}  # (a start after a stop builds a new registry)
        self.metrics = PanelMetrics(self.container.service_name)

    def add_scrape_hook(self, hook):
        """``hook(metrics)`` runs before every scrape, to refresh gauges."""
        self.collectors.append(hook)

    def start(self):
        port = str(self.container.config.get("METRICS_PORT", "off")).strip().lower()
        if port in ("", "off", "none", "false"):  # YAML reads ${METRICS_PORT:...}=off as false
            return
        host = self.container.config.get("METRICS_HOST", "127.0.0.1")
        self._socket = eventlet.listen((host, int(port)))
        self.port = self._socket.getsockname()[1]
        app = make_wsgi_app(self.metrics.registry)

        def scrape(environ, start_response):
            for hook in self.collectors:
                try:
                    hook(self.metrics)
                except Exception:  # a broken gauge must not break the scrape
                    log.exception("metrics hook failed")
            return app(environ, start_response)

        self._server_thread = self.container.spawn_managed_thread(
            lambda: wsgi.server(self._socket, scrape, log_output=False)
        )
        log.info("metrics served", extra={"metrics_port": self.port})

    def stop(self):
        if self._server_thread is not None:
            self._server_thread.kill()
            self._socket.close()
            self._server_thread = None

    def get_dependency(self, worker_ctx):
        return self.metrics

    def worker_setup(self, worker_ctx):
        self._started[worker_ctx] = time.perf_counter()
        entrypoint = worker_ctx.entrypoint
        if isinstance(entrypoint, EventHandler) and worker_ctx.args:
            payload = worker_ctx.args[0]
            occurred_at = payload.get("occurred_at") if isinstance(payload, dict) else None
            if occurred_at:
                lag = datetime.now(timezone.utc) - datetime.fromisoformat(occurred_at)
                self.metrics.event_lag.labels(
                    self.container.service_name, entrypoint.source_service, entrypoint.event_type
                ).observe(max(lag.total_seconds(), 0))

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self._started.pop(worker_ctx, None)
        outcome = outcome_of(exc_info)
        calls, duration = self._series_of(worker_ctx.entrypoint, outcome)
        calls.inc()
        if exc_info is not None and isinstance(exc_info[1], PanelError):
            self.metrics.refusals.labels(
                self.container.service_name, worker_ctx.entrypoint.method_name, exc_info[1].code).inc()
        if started is not None:
            duration.observe(time.perf_counter() - started)

    def _series_of(self, entrypoint, outcome):
        """The call counter and duration histogram of one entrypoint and outcome, looked up
        once (``labels()`` validates and locks on every call)."""
        key = (entrypoint, outcome)
        series = self._series.get(key)
        if series is None:
            name, kind, service = entrypoint.method_name, entrypoint_kind(entrypoint), self.container.service_name
            series = self._series[key] = (
                self.metrics.entrypoint_calls.labels(service, name, kind, outcome),
                self.metrics.entrypoint_duration.labels(service, name, kind),
            )
        return series
