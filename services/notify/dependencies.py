"""Wires the notify use cases to this container's store, clock and config: the action log
and the webhooks (their sealing key, the HTTP sender with its SSRF guard, and the
delivery worker, a greenthread managed by the container)."""

from nameko.extensions import DependencyProvider

from common.clock import ClockProvider
from common.sealing import secret_box
from common.service import EventStoreProvider, find_provider
from services.notify.adapters.webhook_http import WebhookSender
from services.notify.usecases import NotifyUseCases
from services.notify.webhooks import WebhookUseCases, _flag


class NotifyUseCasesProvider(DependencyProvider):
    def start(self):
        config = self.container.config
        store = find_provider(self.container, EventStoreProvider).store
        clock = find_provider(self.container, ClockProvider).clock
        sender = WebhookSender(allow_private=_flag(config.get("WEBHOOK_ALLOW_PRIVATE", False)),
                               read_timeout=float(config.get("WEBHOOK_TIMEOUT_SECONDS") or 5))
        webhooks = WebhookUseCases(store, clock, secret_box(config, "WEBHOOK_SECRETS_KEY"), sender, config)
        self.usecases = NotifyUseCases(store, clock, webhooks)
        self.webhooks = webhooks
        self.container.spawn_managed_thread(webhooks.run_worker, identifier="webhook-deliveries")

    def stop(self):
        self.webhooks.running = False  # the worker ends after its current round

    def get_dependency(self, worker_ctx):
        return self.usecases
