"""Billing's invoice events reaching the real inventory service (R-SRV-3) on a real RabbitMQ
and SQLite: each event takes effect once, and a stale one — an ``invoice_overdue`` handled
after its invoice's ``invoice_paid``, an old ``invoice_paid`` redelivered — changes nothing.

The events are published to ``billing.events`` as billing's outbox relay publishes them;
each step waits until inventory's handler has finished with the message."""

import uuid
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter

from common.db import create_engine
from common.messaging import ConfirmedPublisher
from deploy.components import migrate
from services.inventory.service import InventoryService
from tests.support import store_of

HARDWARE = {"cpu": "AMD EPYC 7443P", "cpu_count": 1, "ram_gb": 128, "disks": ["2x 960 GB NVMe"], "gpu": None}
BMC = {"endpoint": "http://127.0.0.1:9", "system_id": "unused"}
HANDLERS = {"invoice_overdue": "on_invoice_overdue", "invoice_paid": "on_invoice_paid"}


class Billing:
    """Publishes invoice events as billing does and waits for inventory to handle each."""

    def __init__(self, amqp_uri, inventory):
        self.publish = ConfirmedPublisher(amqp_uri, "billing")
        self.inventory = inventory
        self.position = 0

    def event(self, kind, invoice_id, version, **data):
        self.position += 1
        return {
            "envelope_version": 1, "event_id": str(uuid.uuid4()), "type": kind, "source": "billing",
            "stream_id": f"invoice-{invoice_id}", "version": version, "position": self.position,
            "occurred_at": datetime.now(timezone.utc).isoformat(), "user_id": "ann",
            "data": dict(invoice_id=invoice_id, user_id="ann", **data),
        }

    def overdue(self, server_id, invoice_id):
        return self.event("invoice_overdue", invoice_id, 2, server_id=server_id, amount="49.00")

    def paid(self, server_id, invoice_id, paid_until):
        return self.event("invoice_paid", invoice_id, 3, server_id=server_id, paid_on="2027-01-02",
                          paid_until=paid_until)

    def deliver(self, envelope):
        """Publish ``envelope`` and return once inventory's handler finished with it."""
        with entrypoint_waiter(self.inventory, HANDLERS[envelope["type"]], timeout=30) as handled:
            self.publish([envelope])
        handled.get()  # the handler's own error, if it raised


@pytest.fixture
def inventory(start_service, tmp_path):
    url = f"sqlite:///{tmp_path / 'inventory.db'}"
    migrate("inventory", create_engine(url))
    return start_service(InventoryService, DATABASE_URL=url, METRICS_PORT="off")


@pytest.fixture
def billing(amqp_uri, inventory):
    publisher = Billing(amqp_uri, inventory)
    yield publisher
    publisher.publish.close()


@pytest.fixture
def server(amqp_uri, inventory):
    """Ann's server, paid until the end of 2026."""
    with ServiceRpcProxy("inventory", {"AMQP_URI": amqp_uri}) as rpc:
        return rpc.provision_server("ann", "NL", "Dedicated AX41", HARDWARE, ["203.0.113.10"], "ubuntu-24.04", BMC,
                                    "2026-12-31", "49.00")


def listed(amqp_uri, server_id):
    """The server as Ann's server list shows it."""
    with ServiceRpcProxy("inventory", {"AMQP_URI": amqp_uri}, context_data={"user_id": "ann"}) as rpc:
        return rpc.server_summary(server_id)


def payment_events(inventory, server_id):
    return [e for e in store_of(inventory).load_stream(f"server-{server_id}") if e.type == "server_paid"]


def inbox_entries(inventory, event_id):
    store = store_of(inventory)
    inbox = store.tables.inbox
    with store.engine.connect() as conn:
        return conn.execute(sa.select(inbox.c.consumer).where(inbox.c.event_id == event_id)).scalars().all()


def test_an_overdue_handled_after_its_invoice_was_paid_leaves_the_server_active(amqp_uri, billing, server):
    overdue, paid = billing.overdue(server["id"], "inv-1"), billing.paid(server["id"], "inv-1", "2027-01-31")
    billing.deliver(paid)
    billing.deliver(overdue)  # published first, handled last (the other queue, or a retry)
    shown = listed(amqp_uri, server["id"])
    assert (shown["status"], shown["paid_until"]) == ("active", "2027-01-31")


def test_the_next_invoices_overdue_still_marks_the_server_and_its_payment_clears_it(amqp_uri, billing, server):
    billing.deliver(billing.paid(server["id"], "inv-1", "2027-01-31"))
    billing.deliver(billing.overdue(server["id"], "inv-2"))
    assert listed(amqp_uri, server["id"])["status"] == "overdue"
    billing.deliver(billing.paid(server["id"], "inv-2", "2027-02-28"))
    shown = listed(amqp_uri, server["id"])
    assert (shown["status"], shown["paid_until"]) == ("active", "2027-02-28")


def test_the_same_invoice_paid_delivered_twice_takes_effect_once(amqp_uri, inventory, billing, server):
    paid = billing.paid(server["id"], "inv-1", "2027-01-31")
    billing.deliver(paid)
    assert listed(amqp_uri, server["id"])["paid_until"] == "2027-01-31"
    billing.deliver(paid)  # the outbox published it twice (a crash before its checkpoint)
    assert listed(amqp_uri, server["id"])["paid_until"] == "2027-01-31"
    assert len(payment_events(inventory, server["id"])) == 1
    assert inbox_entries(inventory, paid["event_id"]) == ["inventory.on_invoice_paid"]


def test_an_older_invoice_paid_redelivered_never_moves_paid_until_back(amqp_uri, inventory, billing, server):
    first = billing.paid(server["id"], "inv-1", "2027-01-31")
    billing.deliver(first)
    billing.deliver(billing.paid(server["id"], "inv-2", "2027-02-28"))
    billing.deliver(first)
    billing.deliver(dict(first, event_id=str(uuid.uuid4())))  # the same fact under another event id
    shown = listed(amqp_uri, server["id"])
    assert (shown["status"], shown["paid_until"]) == ("active", "2027-02-28")
    store = store_of(inventory)
    assert store.rebuild_projections(dry_run=True)[1] == store.snapshot_projections()
