"""RabbitMQ plumbing shared by the services.

- ``event_exchange(source)``: the topic exchange ``<source>.events`` nameko's
  ``@event_handler`` binds to; the outbox relay publishes there — but for work events
  (``operation_requested``), which go to the service's own ``work_exchange(source)``,
  ``<source>.work`` (``exchange_for`` picks; ``common.contracts`` marks them).
- ``ConfirmedPublisher``: publishes envelopes persistently with publisher confirms,
  pipelined (a batch is written, then its acks are read as they come); used by the outbox
  relay, which advances its checkpoint only past envelopes whose confirm arrived
  (``PublishIncomplete`` says how many, from the first, did).
- ``reliable_event_handler``: an ``@event_handler`` for work that must not be lost. Its
  queue is durable; a message is acked only after the handler finished. When the handler
  raises, the message goes to a retry queue and comes back after a growing delay (RabbitMQ
  per-message TTL + dead-lettering back to the main queue); after ``max_deliveries``
  attempts it is parked in ``<queue>.dlq`` for a human, so a poison message cannot loop.
  Pair it with the inbox (``Transaction.record_inbox``) so redelivery is harmless.
- ``operation_worker(service, kind_prefix)``: the one way a service carries out its
  accepted operations (``common.operations``), a reliable handler of its own
  ``operation_requested``.
"""

import functools
import logging
import os
import socket
import time
import traceback

from amqp import Message, spec
from kombu import Connection, Exchange, Queue, serialization
from nameko.amqp.publish import Publisher as NamekoPublisher
from nameko.amqp.publish import get_connection
from nameko.constants import AMQP_URI_CONFIG_KEY, HEADER_PREFIX, PERSISTENT
from nameko.events import SERVICE_POOL, EventHandler

from common import amqp_readahead, context, rpc_errors  # noqa: F401 - rpc_errors registers the error types
from common.contracts import WORK_EVENT_TYPES

# Every AMQP connection of a panel process reads ahead (one recv per message, not nine).
amqp_readahead.enable()

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-panel-attempt"
ERROR_HEADER = "x-panel-last-error"
DEFAULT_RETRY_DELAYS = (1, 5, 30, 120)
DEFAULT_MAX_DELIVERIES = 5
CONTEXT_HEADERS = context.PUBLISHED_KEYS
_BASIC_PUBLISH = spec.Basic.Publish


def event_exchange(source):
    return Exchange(f"{source}.events", type="topic", durable=True, delivery_mode=PERSISTENT)


def work_exchange(source):
    """``<source>.work``: the service's own work events, for its operation worker only."""
    return Exchange(f"{source}.work", type="topic", durable=True, delivery_mode=PERSISTENT)


def exchange_for(source, event_type):
    """The exchange ``source``'s ``event_type`` is published to (and its handlers bind to)."""
    return work_exchange(source) if event_type in WORK_EVENT_TYPES else event_exchange(source)


def context_headers(envelope):
    """nameko call-context headers for a published envelope, so the consuming worker gets
    the same request, correlation, user and session ids (and logs them)."""
    headers = {f"{HEADER_PREFIX}.{key}": envelope[key] for key in CONTEXT_HEADERS if envelope.get(key)}
    headers[f"{HEADER_PREFIX}.causation_id"] = envelope["event_id"]
    return headers


class PublishIncomplete(Exception):
    """Not every envelope of a batch was confirmed. ``confirmed`` is how many envelopes,
    from the first, the broker confirmed without a gap: those are safe; the rest must be
    published again (their order kept)."""

    def __init__(self, confirmed, reason):
        super().__init__(f"{reason} ({confirmed} confirmed)")
        self.confirmed = confirmed
        self.reason = reason


class ConfirmedPublisher:
    """Publishes integration envelopes of one source service with publisher confirms,
    pipelined: up to ``window`` messages — of different streams — are written before it
    waits, and the broker's acks (often one ``multiple`` ack for many) are read off the
    channel as they come. Two events of one stream are never in flight together (the second
    waits for the first one's confirm), so per-stream order holds on every queue, also when
    a message is nacked, and consumers of several queues see a stream's events with at
    least a confirm round trip between them, as with one-by-one publishing.

    ``publisher(envelopes)`` returns once every envelope was confirmed, in order, on one
    channel (so the broker queues them in the order given). Otherwise it raises
    ``PublishIncomplete`` saying how many envelopes, from the first, were confirmed: a
    ``basic.nack``, a ``basic.return`` (only with ``mandatory=True``), no confirm within
    ``confirm_timeout`` seconds, or a broken connection ends the batch; the connection is
    then dropped and a new one opened on the next call. ``window=1`` waits for each
    confirm before the next publish (the old, one-by-one behaviour).

    ``mandatory`` is off by default: an event type nobody subscribes to (yet) is routed
    nowhere, which is not a failure of the relay; with it on, such an event would block
    the outbox until someone binds a queue.
    """

    def __init__(self, amqp_uri, source, window=1000, confirm_timeout=30.0, mandatory=False):
        self.amqp_uri = amqp_uri
        self.exchange = event_exchange(source)
        self.work_exchange = work_exchange(source)
        self.connection_name = f"outbox {source} pid {os.getpid()}"
        self.window = max(int(window), 1)
        self.confirm_timeout = confirm_timeout
        self.mandatory = mandatory
        self._connection = None
        self._channel = None
        self._next_tag = 0  # delivery tag of the last message published on the channel
        self._batch = None

    def _get_channel(self):
        if self._channel is None:
            connection = Connection(self.amqp_uri, transport_options={
                "client_properties": {"connection_name": self.connection_name}})
            connection.connect()
            self._connection = connection
            channel = connection.connection.channel()
            for exchange in (self.exchange, self.work_exchange):
                channel.exchange_declare(exchange.name, exchange.type, durable=True, auto_delete=False)
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            channel.events["basic_return"].add(self._on_return)
            self._channel = channel
            self._next_tag = 0
        return self._channel

    def __call__(self, envelopes):
        envelopes = list(envelopes)
        done = 0
        try:
            channel = self._get_channel()
            while done < len(envelopes):
                chunk = self._next_chunk(envelopes, done)
                confirmed = self._publish_chunk(channel, chunk)
                done += confirmed
                if confirmed < len(chunk):
                    raise PublishIncomplete(done, self._batch.failure or "not confirmed")
        except PublishIncomplete:
            self.close()
            raise
        except Exception as error:
            # A broken channel or connection: start afresh next time. What was confirmed
            # before the failure stays confirmed.
            self.close()
            raise PublishIncomplete(done + (self._batch.prefix() if self._batch else 0),
                                    f"{type(error).__name__}: {error}") from error
        finally:
            self._batch = None
        return len(envelopes)

    def _next_chunk(self, envelopes, start):
        """Envelopes from ``start`` on, at most ``window``, and never two of one stream: an
        event is written only once the previous event of its stream was confirmed, so a
        stream's events reach every queue in order even when one of them is nacked."""
        streams = set()
        end = start
        while end < len(envelopes) and end - start < self.window:
            stream = envelopes[end].get("stream_id")
            if stream in streams:
                break
            streams.add(stream)
            end += 1
        return envelopes[start:end]

    def _publish_chunk(self, channel, chunk):
        """Write ``chunk``, then read acks until each message is settled; returns how many,
        from the first, were acked."""
        batch = self._batch = _Batch(self._next_tag + 1, [item["event_id"] for item in chunk])
        for item in chunk:
            content_type, encoding, body = serialization.dumps(item, "json")
            message = Message(
                body.encode(encoding) if isinstance(body, str) else body,
                content_type=content_type, content_encoding=encoding,
                delivery_mode=PERSISTENT, application_headers=context_headers(item),
                message_id=item["event_id"],
            )
            exchange = self.work_exchange.name if item["type"] in WORK_EVENT_TYPES else self.exchange.name
            channel.send_method(_BASIC_PUBLISH, "Bssbb", (0, exchange, item["type"], self.mandatory, False), message)
            self._next_tag += 1
        deadline = time.monotonic() + self.confirm_timeout
        connection = self._connection.connection
        while not batch.settled():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                batch.failure = f"no confirm within {self.confirm_timeout:g}s"
                break
            try:
                connection.drain_events(timeout=remaining)
            except socket.timeout:
                continue
        return batch.prefix()

    def _on_ack(self, delivery_tag, multiple):
        if self._batch is not None:
            self._batch.settle(delivery_tag, multiple, True)

    def _on_nack(self, delivery_tag, multiple):
        if self._batch is not None:
            self._batch.settle(delivery_tag, multiple, False)
            self._batch.failure = self._batch.failure or "nacked by the broker"

    def _on_return(self, exc, exchange, routing_key, message):
        if self._batch is not None:
            self._batch.returned(message.properties.get("message_id"))

    def close(self):
        if self._connection is not None:
            try:
                self._connection.collect()
            except Exception:  # the connection may already be gone; nothing left to free
                log.debug("error closing publisher connection", exc_info=True)
        self._connection = None
        self._channel = None


class _Batch:
    """Confirm states of messages with consecutive delivery tags from ``first_tag``."""

    def __init__(self, first_tag, message_ids):
        self.first_tag = first_tag
        self.index_of = {message_id: i for i, message_id in enumerate(message_ids)}
        self.states = [None] * len(message_ids)  # None: waiting; True: acked; False: not
        self.waiting = len(message_ids)
        self.low = 0  # no waiting message below this index
        self.failure = None

    def _set(self, index, ok):
        if self.states[index] is None:
            self.states[index] = ok
            self.waiting -= 1

    def settle(self, delivery_tag, multiple, ok):
        index = delivery_tag - self.first_tag
        if index < 0:
            return  # a late confirm of an earlier batch
        index = min(index, len(self.states) - 1)
        for i in range(self.low if multiple else index, index + 1):
            self._set(i, ok)
        while self.low < len(self.states) and self.states[self.low] is not None:
            self.low += 1

    def returned(self, message_id):
        """A returned message: its ack follows, but it reached no queue."""
        index = self.index_of.get(message_id)
        if index is not None:
            self._set(index, False)
            self.failure = self.failure or "returned: no queue is bound for it"

    def settled(self):
        return self.waiting == 0

    def prefix(self):
        """How many messages, from the first, were acked."""
        count = 0
        for state in self.states:
            if state is not True:
                break
            count += 1
        return count


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
            Queue(main, exchange=exchange_for(source_service, event_type), routing_key=event_type, durable=True),
            Queue(
                retry,
                durable=True,
                queue_arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": main},
            ),
            Queue(dlq, durable=True),
        )

    def setup(self):
        super().setup()
        # nameko's queue, but bound where the event is published (work events: <source>.work).
        self.queue, self.retry_queue, self.dead_letter_queue = self.build_queues(
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


def operation_worker(service, kind_prefix):
    """The entrypoint that carries out ``service``'s accepted operations whose kind starts
    with ``kind_prefix``: a ``reliable_event_handler`` of the service's own
    ``operation_requested`` (a durable queue, acked after the work, so accepted work
    survives a crash). The decorated method gets the operation's view (``operation_id``,
    ``kind``, ``target``, ``params`` …); operations of other kinds are acked untouched."""

    def decorate(method):
        @functools.wraps(method)
        def carry_out(self, payload):
            operation = payload["data"]
            if operation["kind"].startswith(kind_prefix):
                return method(self, operation)
            return None

        return reliable_event_handler(service, "operation_requested")(carry_out)

    return decorate
