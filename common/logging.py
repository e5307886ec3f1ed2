"""Structured logs: one JSON object a line, with the call context of the running worker.

``configure(service)`` installs the formatter on the root logger. Every record carries
``service``, ``request_id`` and ``correlation_id`` (when known). Values whose key names a
secret (password, code, token, key, secret) are replaced by ``[redacted]`` wherever they
appear in a record's extra fields, so a careless ``log.info(..., extra=payload)`` cannot
leak them; messages themselves must never interpolate secrets.
"""

import json
import logging
import re
import sys
import time

from common import context

# A key is secret when it is, or ends with, one of these words (``code`` alone, so that
# ``status_code`` stays readable; ``recovery_codes`` explicitly).
SENSITIVE_KEY = re.compile(
    r"(^|_)(password|passwd|secret|token|key|otp|authorization|cookie|recovery_codes)$|^code$",
    re.I,
)
REDACTED = "[redacted]"

_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def redact(value, key=""):
    """A copy of ``value`` with every secret-looking member replaced by ``[redacted]``."""
    if key and SENSITIVE_KEY.search(key) and not isinstance(value, (dict, list)):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v, key) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def __init__(self, service):
        super().__init__()
        self.service = service

    def format(self, record):
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + ".%03dZ" % record.msecs,
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(context.current())
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = redact(value, key)
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(service, level="INFO", stream=None):
    """Send every log record of this process to ``stream`` (stderr) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # eventlet.wsgi logs every request at INFO with the full URL; keep it at WARNING (the
    # gateway's server turns that line off anyway: gateway.http, ACCESS_LOG).
    logging.getLogger("nameko.web.server").setLevel(logging.WARNING)
