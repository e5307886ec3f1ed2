"""A pytest plugin loaded before every installed one (``-p`` in pyproject's addopts):
eventlet patches the standard library before any plugin imports ``ssl`` or ``socket``
(schemathesis' plugin imports requests at start-up; patching after that makes every TLS
context recurse forever)."""

import eventlet

eventlet.monkey_patch()
