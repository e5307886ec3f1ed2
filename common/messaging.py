"""RabbitMQ plumbing shared by the services.

- ``event_exchange(source)``: the topic exchange ``<source>.events`` nameko's
  ``@event_handler`` binds to; the outbox relay publishes there.
- ``ConfirmedPublisher``: publishes envelopes persistently with publisher confirms; used by
  the outbox relay, which advances its checkpoint only after this returns.
- ``reliable_event_handler``: an ``@event_handler`` for work that must not be lost. Its
  queue is durable; a message is acked only after the handler finished. When the handler
  raises, the message goes to a retry queue and comes back after a growing delay (RabbitMQ
  per-message TTL + dead-lettering back to the main queue); after ``max_deliveries``
  attempts it is parked in ``<queue>.dlq`` for a human, so a poison message cannot loop.
  Pair it with the inbox (``Transaction.record_inbox``) so redelivery is harmless.
"""

import logging
import traceback

from kombu import Connection, Exchange, Producer, Queue
from kombu.common import maybe_declare
from nameko.amqp.publish import Publisher as NamekoPublisher
from nameko.amqp.publish import get_connection
from nameko.constants import AMQP_URI_CONFIG_KEY, HEADER_PREFIX, PERSISTENT
from nameko.events import SERVICE_POOL, EventHandler

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-panel-attempt"
ERROR_HEADER = "x-panel-last-error"
DEFAULT_RETRY_DELAYS = (1, 5, 30, 120)
DEFAULT_MAX_DELIVERIES = 5
CONTEXT_HEADERS = ("request_id", "correlation_id", "user_id", "session_id")


def event_exchange(source):
    return Exchange(f"{source}.events", type="topic", durable=True, delivery_mode=PERSISTENT)


def context_headers(envelope):
    """nameko call-context headers for a published envelope, so the consuming worker gets
    the same request, correlation, user and session ids (and logs them)."""
    headers = {f"{HEADER_PREFIX}.{key}": envelope[key] for key in CONTEXT_HEADERS if envelope.get(key)}
    headers[f"{HEADER_PREFIX}.causation_id"] = envelope["event_id"]
    return headers


class ConfirmedPublisher:
    """Publishes integration envelopes of one source service, waiting for confirms."""

    def __init__(self, amqp_uri, source):
        self.amqp_uri = amqp_uri
        self.exchange = event_exchange(source)
        self._connection = None
        self._producer = None

    def _get_producer(self):
        if self._producer is None:
            self._connection = Connection(self.amqp_uri, transport_options={"confirm_publish": True})
            self._producer = Producer(self._connection.channel(), exchange=self.exchange)
            maybe_declare(self.exchange, self._producer.channel)
        return self._producer

    def __call__(self, envelopes):
        try:
            producer = self._get_producer()
            for item in envelopes:
                producer.publish(
                    item,
                    routing_key=item["type"],
                    serializer="json",
                    delivery_mode=PERSISTENT,
                    headers=context_headers(item),
                    message_id=item["event_id"],
                )
        except Exception:
            # A broken channel or a nack: start afresh next time; the caller keeps the
            # checkpoint where it was, so these events are published again.
            self.close()
            raise

    def close(self):
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception:  # the connection may already be gone; nothing left to free
                log.debug("error closing publisher connection", exc_info=True)
        self._connection = None
        self._producer = None


class ReliableEventHandler(EventHandler):
    """See the module docstring. Use through ``reliable_event_handler(source, type)``."""

    def __init__(
        self,
        source_service,
        event_type,
        max_deliveries=DEFAULT_MAX_DELIVERIES,
        retry_delays=DEFAULT_RETRY_DELAYS,
        **kwargs,
    ):
        super().__init__(
            source_service,
            event_type,
            handler_type=SERVICE_POOL,
            reliable_delivery=True,
            requeue_on_error=False,
            **kwargs,
        )
        self.max_deliveries = max_deliveries
        self.retry_delays = tuple(retry_delays)

    @staticmethod
    def queue_names(source_service, event_type, service_name, method_name):
        main = f"evt-{source_service}-{event_type}--{service_name}.{method_name}"
        return main, f"{main}.retry", f"{main}.dlq"

    @classmethod
    def build_queues(cls, source_service, event_type, service_name, method_name):
        """The main, retry and dead-letter queues of one handler (also used to declare the
        topology at deploy time, before any producer publishes)."""
        main, retry, dlq = cls.queue_names(source_service, event_type, service_name, method_name)
        return (
            Queue(main, exchange=event_exchange(source_service), routing_key=event_type, durable=True),
            Queue(
                retry,
                durable=True,
                queue_arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": main},
            ),
            Queue(dlq, durable=True),
        )

    def setup(self):
        super().setup()
        main, self.retry_queue, self.dead_letter_queue = self.build_queues(
            self.source_service, self.event_type, self.container.service_name, self.method_name
        )
        amqp_uri = self.container.config[AMQP_URI_CONFIG_KEY]
        with get_connection(amqp_uri) as connection:
            channel = connection.channel()
            for queue in (self.retry_queue, self.dead_letter_queue):
                queue(channel).declare()
        self._publisher = NamekoPublisher(amqp_uri, use_confirms=True, serializer="json")

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is None:
            self.queue_consumer.ack_message(message)
            return
        attempt = int((message.headers or {}).get(ATTEMPT_HEADER, 1))
        headers = dict(message.headers or {})
        headers[ATTEMPT_HEADER] = attempt + 1
        headers[ERROR_HEADER] = "".join(traceback.format_exception_only(*exc_info[:2])).strip()[:500]
        try:
            if attempt >= self.max_deliveries:
                log.error(
                    "event parked in dead-letter queue after %d attempts",
                    attempt,
                    extra={"queue": self.dead_letter_queue.name, "event_type": self.event_type},
                )
                self._publisher.publish(
                    message.payload, exchange="", routing_key=self.dead_letter_queue.name,
                    headers=headers, delivery_mode=PERSISTENT,
                )
            else:
                delay = self.retry_delays[min(attempt - 1, len(self.retry_delays) - 1)]
                log.warning(
                    "event handler failed; retrying in %ss (attempt %d of %d)",
                    delay, attempt, self.max_deliveries,
                    extra={"event_type": self.event_type},
                )
                self._publisher.publish(
                    message.payload, exchange="", routing_key=self.retry_queue.name,
                    headers=headers, delivery_mode=PERSISTENT, expiration=delay,
                )
        except Exception:
            # Could not hand the message on: give it back to the broker instead of losing it.
            log.exception("could not schedule a retry; requeueing the message")
            self.queue_consumer.requeue_message(message)
            return
        self.queue_consumer.ack_message(message)


reliable_event_handler = ReliableEventHandler.decorator
