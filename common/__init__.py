"""The one shared library of the panel's services: event store, outbox, inbox, operations,
messaging, config, logging, metrics and errors. Services import it; nothing is copied.

Importing it does nothing else: the domain layer (``common.errors``, ``common.eventstore``'s
``Aggregate`` and ``NewEvent``) loads neither nameko nor SQLAlchemy nor py-amqp; the
transport modules switch py-amqp's read-ahead on (``common.amqp_readahead``) and register
the error types with nameko (``common.rpc_errors``) when they are imported."""

import warnings

# eventlet announces its deprecation on import. We run nameko 2, which needs it (README,
# "Why nameko 2 and eventlet"); say it once there rather than on every start.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
