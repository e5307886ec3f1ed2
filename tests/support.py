"""A small test domain for the shared machinery: accounts credited and debited, with a
``balances`` projection. Used by the event store contract tests and the messaging tests.
Also the helpers every test module shares: waiting for a condition, free ports, the Origin
header of a browser, reading a Server-Sent Events stream."""

import json
import time

import eventlet
import requests
import sqlalchemy as sa

from common.db import create_engine
from common.eventstore import NewEvent, Projection
from common.service_schema import ServiceSchema


class BalancesProjection(Projection):
    def __init__(self, metadata):
        self.table = sa.Table(
            "balances", metadata,
            sa.Column("account_id", sa.String(64), primary_key=True),
            sa.Column("balance", sa.Integer, nullable=False),
            sa.Column("movements", sa.Integer, nullable=False),
        )
        self.tables = (self.table,)

    def _move(self, conn, account_id, amount):
        updated = conn.execute(
            self.table.update().where(self.table.c.account_id == account_id).values(
                balance=self.table.c.balance + amount, movements=self.table.c.movements + 1
            )
        )
        if updated.rowcount == 0:
            conn.execute(self.table.insert().values(account_id=account_id, balance=amount, movements=1))

    def when_credited(self, conn, event):
        if event.data.get("explode"):
            raise RuntimeError("projection failure")
        self._move(conn, event.stream_id, event.data["amount"])

    def when_debited(self, conn, event):
        self._move(conn, event.stream_id, -event.data["amount"])


def make_schema(service="ledger"):
    schema = ServiceSchema(service)
    balances = schema.add_projection(BalancesProjection(schema.metadata))
    return schema, balances


def make_store(url, service="ledger"):
    """An event store with the balances projection on a fresh database at ``url``."""
    schema, balances = make_schema(service)
    engine = create_engine(url)
    schema.metadata.create_all(engine)
    return schema.create_store(engine), balances


def credited(amount, **extra):
    return NewEvent("credited", {"amount": amount, **extra})


def debited(amount):
    return NewEvent("debited", {"amount": amount})


def balance_of(store, balances, account_id):
    with store.engine.connect() as conn:
        return conn.execute(
            sa.select(balances.table.c.balance).where(balances.table.c.account_id == account_id)
        ).scalar()


def wait_for(condition, timeout=10.0, interval=0.02, message="condition"):
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message() if callable(message) else message}")
        time.sleep(interval)


def store_of(container):
    """The event store of a running service container."""
    from common.service import EventStoreProvider

    return next(d for d in container.dependencies if isinstance(d, EventStoreProvider)).store


def http_ok(url, timeout=2):
    """True when ``url`` answers 2xx; False while nothing listens yet."""
    import requests

    try:
        return requests.get(url, timeout=timeout).ok
    except requests.ConnectionError:
        return False


def origin_header(url):
    """The ``Origin`` header a browser sends with a state-changing request from a page of
    ``url``'s site: the gateway refuses a cookie-authenticated change without it
    (gateway/browser.py), so a test acting like the panel sends it too."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return {"Origin": f"{parts.scheme}://{parts.netloc}"}


def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ChildProcess:
    """A helper process of a test (a stand-in, an emulator): its output goes to a log file
    that failures show."""

    STOP_TIMEOUT = 10

    def __init__(self, name, argv, log_path, env=None):
        import os
        import subprocess

        from common.config import REPO_ROOT

        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})),
            stdout=self._log, stderr=subprocess.STDOUT,
        )

    def log_text(self):
        from pathlib import Path

        return Path(self.log_path).read_text(errors="replace")

    def check_alive(self):
        code = self.process.poll()
        if code is not None:
            raise RuntimeError(f"{self.name} exited with {code}:\n{self.log_text()}")

    def terminate(self):
        import signal

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self):
        """Wait for it to stop after ``terminate`` (kill it if it does not)."""
        import subprocess

        if self.process.poll() is None:
            try:
                self.process.wait(timeout=self.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class StreamReader:
    """Reads a Server-Sent Events stream in a greenthread, collecting its events."""

    def __init__(self, url, token, last_event_id=None, last_event_id_in_query=False):
        headers = {"Authorization": f"Bearer {token}"}
        if last_event_id is not None and last_event_id_in_query:
            url = f"{url}?last_event_id={last_event_id}"
        elif last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.events = []
        self.finished = False
        self.response = requests.get(url, headers=headers, stream=True, timeout=30)
        assert self.response.status_code == 200
        assert self.response.headers["Content-Type"].startswith("text/event-stream")
        self.thread = eventlet.spawn(self._read)

    def _read(self):
        event = {}
        for line in self.response.iter_lines(decode_unicode=True):
            if line.startswith("id: "):
                event["id"] = int(line[4:])
            elif line.startswith("event: "):
                event["type"] = line[7:]
            elif line.startswith("data: "):
                event["data"] = json.loads(line[6:])
            elif line == "" and event:
                self.events.append(event)
                event = {}
        self.finished = True

    def close(self):
        self.thread.kill()
        self.response.close()
