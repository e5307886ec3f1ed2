"""Declares the broker topology every consumer needs, before anything publishes.

An event published to an exchange with no queue bound is dropped. The services declare
their own queues when they start, but a producer may start first (or a consumer may be
redeployed), so deploy and the development stack run ``panel declare-topology`` first:
it declares each service's event and work exchanges and, for every reliable event handler,
its durable queue (bound to the source's exchange: ``<source>.work`` for work events), its retry queue and its dead-letter queue.
"""

from kombu import Connection
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

from common.messaging import ReliableEventHandler, event_exchange, work_exchange


def reliable_handlers(service_cls):
    """(method name, handler) for each reliable event handler of ``service_cls``."""
    found = []
    for name in dir(service_cls):
        for entrypoint in getattr(getattr(service_cls, name), ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(entrypoint, ReliableEventHandler):
                found.append((name, entrypoint))
    return found


def declare(amqp_uri, service_classes):
    """Declare exchanges and queues; returns the names declared."""
    declared = []
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        for service_cls in service_classes:
            for exchange in (event_exchange(service_cls.name), work_exchange(service_cls.name)):
                exchange(channel).declare()
                declared.append(exchange.name)
            for method_name, handler in reliable_handlers(service_cls):
                for queue in ReliableEventHandler.build_queues(
                    handler.source_service, handler.event_type, service_cls.name, method_name
                ):
                    queue(channel).declare()
                    declared.append(queue.name)
    return declared
