"""The one shared library of the panel's services: event store, outbox, inbox, operations,
messaging, config, logging, metrics and errors. Services import it; nothing is copied."""

import warnings

# eventlet announces its deprecation on import. We run nameko 2, which needs it (README,
# "Why nameko 2 and eventlet"); say it once there rather than on every start.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

# Every AMQP connection of a panel process reads ahead (one recv per message, not nine).
from common import amqp_readahead  # noqa: E402

amqp_readahead.enable()
