"""What every panel service is made of, so that no service re-implements it.

``PanelService`` is the base class of every service: it brings the call context (log ids),
metrics, the event store, the outbox relay, the operations helper and the ``health`` RPC.
A service subclasses it, sets ``name`` and ``schema`` (a ``common.service_schema.ServiceSchema``),
wires its use cases with ``UseCases(build)`` (``build`` in the service's ``dependencies.py``
turns ``ServiceParts`` into the use-case object) and adds its own entrypoints.
"""

import contextvars
import logging
import threading
import time

import eventlet
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.extensions import DependencyProvider

from common import context
from common.clock import ClockProvider
from common.contracts import integration_types
from common.db import create_engine
from common.errors import Unauthenticated
from common.eventstore import utcnow
from common.eventstore.outbox import OutboxRelay
from common.messaging import ConfirmedPublisher
from common.metrics import Metrics
from common.operations import Operations
from common.rpc import rpc

log = logging.getLogger(__name__)


def find_provider(container, provider_cls):
    """The dependency provider of type ``provider_cls`` in ``container``."""
    for provider in container.dependencies:
        if isinstance(provider, provider_cls):
            return provider
    raise LookupError(f"{container.service_name} has no {provider_cls.__name__}")


class CallContext(DependencyProvider):
    """Binds the worker's request/correlation/user/session ids for logs and appended events.
    For an event handler the handled event becomes the causation of what it appends."""

    def __init__(self):
        self._tokens = {}

    def worker_setup(self, worker_ctx):
        values = context.from_worker(worker_ctx)
        payload = worker_ctx.args[0] if worker_ctx.args else None
        if isinstance(payload, dict) and "event_id" in payload and "source" in payload:
            values["causation_id"] = payload["event_id"]
        self._tokens[worker_ctx] = context.bind(values)

    def worker_teardown(self, worker_ctx):
        token = self._tokens.pop(worker_ctx, None)
        if token is not None:
            context.unbind(token)

    def get_dependency(self, worker_ctx):
        return context.current


class BackgroundTasks(DependencyProvider):
    """Injects ``later(fn, *args)``: run ``fn(*args)`` after the entrypoint has answered, in
    a greenthread of the container, with the worker's call context (its logs keep the
    request id). For work whose outcome the caller must neither wait for nor learn from —
    e.g. mailing a password reset link, where the answer must not tell whether the account
    exists. A graceful stop waits for the tasks under way; a crash loses them, so use it
    only for work a user can simply ask for again."""

    def setup(self):
        self.pool = eventlet.GreenPool()

    def stop(self):
        self.pool.waitall()

    def kill(self):
        for thread in list(self.pool.coroutines_running):
            thread.kill()

    def later(self, fn, *args):
        call_context = contextvars.copy_context()

        def task():
            try:
                call_context.run(fn, *args)
            except Exception:
                log.exception("a background task failed", extra={"task": getattr(fn, "__qualname__", repr(fn))})

        self.pool.spawn(task)

    def idle(self):
        """True when no task is running (tests wait for it)."""
        return self.pool.running() == 0

    def get_dependency(self, worker_ctx):
        return self.later


class EventStoreProvider(DependencyProvider):
    """The service's ``EventStore`` on ``DATABASE_URL`` (one engine per process)."""

    def setup(self):
        schema = self.container.service_cls.schema
        url = self.container.config["DATABASE_URL"]
        self.engine = create_engine(url)
        self.store = schema.create_store(self.engine)
        if self.container.config.get("DATABASE_CHECK_MIGRATED", True):
            from common import migrations

            migrations.require_head(schema.history, self.engine)

    def stop(self):
        self.engine.dispose()

    kill = stop

    def get_dependency(self, worker_ctx):
        return self.store


class OutboxRelayProvider(DependencyProvider):
    """Runs the outbox relay in the background: woken by every local commit that appended
    events, and every ``OUTBOX_POLL_SECONDS`` for commits of other replicas or retries."""

    def setup(self):
        self.poll_seconds = float(self.container.config.get("OUTBOX_POLL_SECONDS", 1.0))
        self._wake = threading.Event()
        self._running = False
        self._thread = None

    def start(self):
        store = find_provider(self.container, EventStoreProvider).store
        self.metrics = find_provider(self.container, Metrics)
        service = self.container.service_name
        self.publisher = ConfirmedPublisher(self.container.config[AMQP_URI_CONFIG_KEY], service)
        service_cls = self.container.service_cls
        types = service_cls.publishes if service_cls.publishes is not None else integration_types(service)
        self.relay = OutboxRelay(store, self.publisher, service, types)
        store.on_commit(self._wake_for)
        self.metrics.add_scrape_hook(
            lambda m: m.outbox_backlog.labels(service).set(self.relay.backlog())
        )
        self._running = True
        self._thread = self.container.spawn_managed_thread(self._run)

    def _wake_for(self, events):
        """Wake the relay at once only for commits with something to publish; the periodic
        poll moves the checkpoint past the others (no write per commit for them)."""
        if any(event.type in self.relay.types for event in events):
            self._wake.set()

    def _run(self):
        failures = 0
        service = self.container.service_name
        while self._running:
            try:
                published = self.relay.drain()
                if published:
                    self.metrics.metrics.outbox_published.labels(service).inc(published)
                failures = 0
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
            except Exception:
                failures += 1
                self.metrics.metrics.outbox_failures.labels(service).inc()
                log.exception("outbox relay failed; retrying", extra={"attempt": failures})
                time.sleep(min(0.2 * 2 ** failures, 10))

    def stop(self):
        self._running = False
        self._wake.set()
        if self._thread is not None:
            self._thread.wait()
            self._thread = None
        try:
            self.relay.release()
        except Exception:
            log.warning("could not release the outbox lease; it expires by itself", exc_info=True)
        self.publisher.close()

    def kill(self):
        self._running = False
        if self._thread is not None:
            self._thread.kill()

    def get_dependency(self, worker_ctx):
        return self.relay


class OperationsProvider(DependencyProvider):
    """The service's ``Operations`` helper; also exports operations by status as a gauge."""

    _operations = None

    def helper(self):
        """The ``Operations`` of this service, built on first use (other providers may ask
        for it in their own start()). A method, not a property: nameko inspects providers'
        attributes while binding them, before the container is ready."""
        if self._operations is None:
            self._operations = Operations(find_provider(self.container, EventStoreProvider).store,
                                          self.container.service_name,
                                          self.container.service_cls.schema.operations_table)
        return self._operations

    def start(self):
        service = self.container.service_name

        def export(metrics):
            for status, count in self.helper().count_by_status().items():
                metrics.operations.labels(service, status).set(count)
            for status, age in self.helper().oldest_active_ages(utcnow()).items():
                metrics.oldest_active_operation.labels(service, status).set(age)

        find_provider(self.container, Metrics).add_scrape_hook(export)

    def get_dependency(self, worker_ctx):
        return self.helper()


class ServiceParts:
    """What a service's use cases are built from, taken from its container: the config, the
    event store, the operations helper, the clock, the adapter-call observer of its metrics,
    and hooks to run a managed greenthread and to be told when the service stops."""

    def __init__(self, container, prepared=None):
        self.container = container
        self.config = container.config
        self.prepared = prepared  # what ``UseCases(prepare=...)`` read at setup
        self.store = find_provider(container, EventStoreProvider).store
        self.clock = find_provider(container, ClockProvider).clock
        self.observe = find_provider(container, Metrics).metrics.observe_adapter_call
        self.stop_hooks = []

    @property
    def operations(self):
        return find_provider(self.container, OperationsProvider).helper()

    def spawn(self, run, identifier):
        """Run ``run()`` in a greenthread the container manages (killed with the service)."""
        self.container.spawn_managed_thread(run, identifier=identifier)

    def on_stop(self, hook):
        self.stop_hooks.append(hook)


class UseCases(DependencyProvider):
    """A service's use cases, built once at start and handed to every worker.

    ``build(parts)`` gets a ``ServiceParts`` and returns the use-case object the service's
    entrypoints call; ``prepare(config)``, when given, runs at setup — before any entrypoint
    starts — so a broken setting or data file stops the service with its own message, and
    what it returns is ``parts.prepared``."""

    def __init__(self, build, prepare=None):
        self.build = build
        self.prepare = prepare
        self.prepared = None
        self.parts = self.usecases = None

    def setup(self):
        if self.prepare is not None:
            self.prepared = self.prepare(self.container.config)

    def start(self):
        self.parts = ServiceParts(self.container, self.prepared)
        self.usecases = self.build(self.parts)

    def stop(self):
        for hook in self.parts.stop_hooks if self.parts else ():
            hook()

    def get_dependency(self, worker_ctx):
        return self.usecases


class PanelService:
    """Base of every service. Subclasses set ``name`` and ``schema``."""

    name = None
    schema = None
    # Integration event types the outbox publishes; None: this service's entry in
    # common.contracts.INTEGRATION_EVENTS (the one documented list).
    publishes = None

    call_context = CallContext()
    metrics = Metrics()
    store = EventStoreProvider()
    relay = OutboxRelayProvider()
    operations = OperationsProvider()
    clock = ClockProvider()

    @rpc
    def advance_clock(self, seconds):
        """Move this replica's clock forward (tests and demo only: CLOCK_ADJUSTABLE)."""
        return self.clock.advance(seconds).isoformat()

    def _customer(self):
        """The calling customer's user id, from the call context the gateway set;
        ``Unauthenticated`` when the call carries none."""
        user_id = self.call_context().get("user_id")
        if not user_id:
            raise Unauthenticated()
        return user_id

    @rpc
    def get_operation(self, operation_id):
        """One of this service's operations, if it belongs to the calling customer."""
        return self.operations.get(operation_id, user_id=self._customer())

    @rpc
    def health(self):
        """Liveness and basic state of this replica (used by the gateway's /readyz)."""
        return {
            "service": self.name,
            "status": "ok",
            "last_position": self.store.last_position(),
        }
