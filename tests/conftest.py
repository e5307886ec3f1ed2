"""Fixtures shared by every suite.

eventlet is patched before anything else is imported: nameko needs it, and psycopg2
becomes cooperative with it. Broker tests get a RabbitMQ vhost of their own (created through
the management API, deleted afterwards), so nothing leaks between tests or runs. Database
tests run on SQLite files and, in the PostgreSQL lane, on a fresh database of the server at
127.0.0.1:5432 (skipped with a visible notice when none answers).
"""

import eventlet

eventlet.monkey_patch()  # noqa: E402 — must precede every other import

import contextlib  # noqa: E402
import os  # noqa: E402
import uuid  # noqa: E402

import pytest  # noqa: E402
import requests  # noqa: E402

from common import rpc_errors  # noqa: E402,F401 - typed errors from the standalone proxies
from common.container import CONTAINER_CLASS  # noqa: E402
from common.db import create_engine  # noqa: E402

# Fixtures that start stand-in processes (module-scoped): `standins` (SMS, voice, mail) and
# `bmc` (the Redfish emulator).
pytest_plugins = ("tests.standins", "tests.bmc", "tests.s3")

AMQP_HOST = os.environ.get("TEST_AMQP_HOST", "127.0.0.1:5672")
RABBIT_API = os.environ.get("TEST_RABBIT_API", "http://127.0.0.1:15672/api")
RABBIT_AUTH = ("guest", "guest")
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

_pg_notice = []


def pytest_report_header(config):
    return [f"rabbitmq: amqp://{AMQP_HOST} (management {RABBIT_API}); postgres: {PG_ADMIN_URL}"]


def pytest_terminal_summary(terminalreporter):
    if _pg_notice:
        terminalreporter.write_sep("=", "NOTICE", yellow=True, bold=True)
        terminalreporter.write_line(f"PostgreSQL lane skipped: {_pg_notice[0]}", yellow=True)


@contextlib.contextmanager
def temporary_vhost(prefix="panel-test"):
    """A fresh RabbitMQ vhost named ``<prefix>-<random>``: yields its AMQP URI, deletes it
    at the end."""
    vhost = f"{prefix}-{uuid.uuid4().hex[:12]}"
    put = requests.put(f"{RABBIT_API}/vhosts/{vhost}", auth=RABBIT_AUTH, timeout=10)
    put.raise_for_status()
    try:
        requests.put(
            f"{RABBIT_API}/permissions/{vhost}/guest",
            json={"configure": ".*", "write": ".*", "read": ".*"},
            auth=RABBIT_AUTH, timeout=10,
        ).raise_for_status()
        yield f"amqp://guest:guest@{AMQP_HOST}/{vhost}"
    finally:
        requests.delete(f"{RABBIT_API}/vhosts/{vhost}", auth=RABBIT_AUTH, timeout=10)


@pytest.fixture
def amqp_uri():
    """A fresh RabbitMQ vhost for this test; deleted afterwards."""
    with temporary_vhost() as uri:
        yield uri


@pytest.fixture
def start_service(amqp_uri, container_factory):
    """Start a nameko service on this test's vhost: ``start_service(cls, **config)``.
    Containers stop before the vhost is deleted (this fixture depends on both)."""

    def start(service_cls, **config):
        config.setdefault("AMQP_URI", amqp_uri)
        config.setdefault("SERVICE_CONTAINER_CLS", CONTAINER_CLASS)  # as deploy/config/*.yaml
        container = container_factory(service_cls, config)
        container.start()
        return container

    return start


def queue_depth(amqp_uri, queue_name):
    """Messages ready in a queue, asked of the broker itself (management stats lag)."""
    from kombu import Connection

    with Connection(amqp_uri) as connection:
        return connection.channel().queue_declare(queue=queue_name, passive=True).message_count


@pytest.fixture
def rabbit_api():
    """GET a path of the management API, e.g. ``rabbit_api(f"queues/{vhost}/{name}")``."""

    def get(path):
        answer = requests.get(f"{RABBIT_API}/{path}", auth=RABBIT_AUTH, timeout=10)
        answer.raise_for_status()
        return answer.json()

    return get


def postgres_available():
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception as error:  # any failure means "no server here"
        if not _pg_notice:
            _pg_notice.append(f"no PostgreSQL at {PG_ADMIN_URL} ({type(error).__name__})")
        return False


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL database for this test; dropped afterwards."""
    if not postgres_available():
        pytest.skip(_pg_notice[0])
    name = f"panel_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'service.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """Each contract test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'service.db'}"
    return request.getfixturevalue("postgres_url")
