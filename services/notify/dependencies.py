"""Builds the notify use cases from this service's parts: the action log and the webhooks
(their sealing key, the HTTP sender with its SSRF guard, and the delivery worker, a
greenthread the container manages, told to end its round when the service stops)."""

from common.sealing import secret_box
from services.notify.adapters.webhook_http import WebhookSender
from services.notify.usecases import NotifyUseCases
from services.notify.webhooks import WebhookUseCases, _flag


def build(parts):
    config = parts.config
    sender = WebhookSender(allow_private=_flag(config.get("WEBHOOK_ALLOW_PRIVATE", False)),
                           read_timeout=float(config.get("WEBHOOK_TIMEOUT_SECONDS") or 5))
    webhooks = WebhookUseCases(parts.store, parts.clock, secret_box(config, "WEBHOOK_SECRETS_KEY"), sender, config)
    parts.spawn(webhooks.run_worker, identifier="webhook-deliveries")
    parts.on_stop(webhooks.stop)
    return NotifyUseCases(parts.store, parts.clock, webhooks)
