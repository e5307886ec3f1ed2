"""The RabbitMQ a benchmark runs on: where it is (``BENCH_AMQP_HOST``, ``BENCH_RABBIT_API``)
and a vhost of the benchmark's own, created, inspected and deleted through the management
API (``bench.stack``, ``bench.rpc``, ``bench.outbox``)."""

import os
import uuid

from bench import BenchError, say

AMQP_HOST = os.environ.get("BENCH_AMQP_HOST", "127.0.0.1:5672")
RABBIT_API = os.environ.get("BENCH_RABBIT_API", "http://127.0.0.1:15672/api")
RABBIT_AUTH = ("guest", "guest")


class Vhost:
    """A RabbitMQ vhost of the benchmark's own, ``<prefix>-<12 hex>``, open to guest;
    ``delete`` does nothing unless ``create`` succeeded, so it can sit in a ``finally``."""

    def __init__(self, prefix="panel-bench"):
        self.name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.created = False

    @property
    def amqp_uri(self):
        return f"amqp://guest:guest@{AMQP_HOST}/{self.name}"

    def create(self):
        import requests

        try:
            requests.put(f"{RABBIT_API}/vhosts/{self.name}", auth=RABBIT_AUTH, timeout=10).raise_for_status()
        except requests.RequestException as error:
            raise BenchError(f"cannot create a vhost through {RABBIT_API}: {error}") from None
        self.created = True
        requests.put(f"{RABBIT_API}/permissions/{self.name}/guest", auth=RABBIT_AUTH, timeout=10,
                     json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()

    def queue_names(self):
        """The names of the vhost's queues (raises ``requests.RequestException`` or
        ``ValueError`` when the management API does not answer with them)."""
        import requests

        answer = requests.get(f"{RABBIT_API}/queues/{self.name}", params={"columns": "name"},
                              auth=RABBIT_AUTH, timeout=10)
        answer.raise_for_status()
        return [queue["name"] for queue in answer.json()]

    def consumers(self, queue):
        """How many consumers ``queue`` has (0 while it does not exist)."""
        import requests

        answer = requests.get(f"{RABBIT_API}/queues/{self.name}/{queue}", auth=RABBIT_AUTH, timeout=5)
        if answer.status_code == 404:
            return 0
        answer.raise_for_status()
        return answer.json().get("consumers") or 0

    def delete(self):
        import requests

        if not self.created:
            return
        try:
            requests.delete(f"{RABBIT_API}/vhosts/{self.name}", auth=RABBIT_AUTH, timeout=30)
            self.created = False
        except requests.RequestException as error:
            say(f"[bench] could not delete vhost {self.name}: {error}")
