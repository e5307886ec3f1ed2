"""The order saga with a failure injected at each step: the orders use cases on a real event
store (SQLite and PostgreSQL), billing and inventory replaced by in-memory fakes that keep a ledger and a
server list and fail when told. After every scenario the invariants a customer would check
hold: the balance is what it was unless a server was delivered, a unit is claimed exactly
when a server exists, and no step happened twice."""

from datetime import timedelta
from decimal import Decimal

import pytest
from greenlet import GreenletExit

from common import context
from common.clock import Clock
from common.db import create_engine as make_engine
from common.errors import (
    Conflict,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
    error_with_code,
)
from common.operations import Operations
from services.orders import catalog
from services.orders.projections import schema, unit_claims
from services.orders.usecases import OrdersUseCases

OFFERS = catalog.parse_catalog({"instant": [
    {"id": "ax-nl", "name": "AX", "location": "NL", "virtual": False, "ram_gb": 64, "disks": ["1 TB"],
     "cpu": {"vendor": "AMD", "family": "Ryzen", "microarchitecture": "Zen 3", "model": "5600X", "count": 1,
             "cores": 6}, "gpu": None, "price_month": "30.00", "units": 2}]})


class Billing:
    def __init__(self, balance="100.00"):
        self.balance = Decimal(balance)
        self.charges, self.refunds = {}, set()
        self.fail = {}  # method -> list of errors to raise, one per call

    def _maybe_fail(self, method):
        errors = self.fail.get(method)
        error = errors.pop(0) if errors else None  # None in the list: this call goes through
        if error is not None:
            raise error

    def get_account(self):
        return {"balance": str(self.balance)}

    def charge(self, user_id, amount, reference, reason):
        self._maybe_fail("charge")
        if reference not in self.charges:
            if Decimal(amount) > self.balance:
                raise error_with_code(Conflict, "insufficient_funds", "The balance does not cover it.")
            self.balance -= Decimal(amount)
            self.charges[reference] = Decimal(amount)
        self._maybe_fail("charge_after")  # the charge happened, the answer is lost
        return {"charged": True}

    def refund(self, user_id, reference):
        self._maybe_fail("refund")
        if reference not in self.charges or reference in self.refunds:
            return {"refunded": "0.00"}
        self.refunds.add(reference)
        self.balance += self.charges[reference]
        return {"refunded": str(self.charges[reference])}


class Inventory:
    def __init__(self):
        self.servers = {}
        self.fail = []

    def os_images(self):
        return [{"id": "ubuntu-24.04", "name": "Ubuntu 24.04"}]

    @property
    def provision_server(self):
        inventory = self

        class Call:
            def call(self, user_id, *args, server_id=None, power_on=False, timeout=None):
                if inventory.fail:
                    raise inventory.fail.pop(0)
                inventory.servers.setdefault(server_id, {"id": server_id, "number": f"SRV-{len(inventory.servers)}"})
                return inventory.servers[server_id]

        return Call()


class Cluster:
    def __init__(self):
        self.billing, self.inventory = Billing(), Inventory()


@pytest.fixture
def saga(database_url):
    engine = make_engine(database_url)
    schema.metadata.create_all(engine)
    store = schema.create_store(engine)
    clock = Clock(adjustable=True)
    usecases = OrdersUseCases(store, Operations(store, "orders", schema.operations_table), clock,
                              {"ORDER_MAX_ATTEMPTS": 3, "ORDER_RETRY_BASE_SECONDS": 1}, OFFERS)
    cluster = Cluster()
    token = context.bind({"user_id": "ann"})
    yield usecases, cluster, clock
    context.unbind(token)


def place(usecases, cluster):
    accepted = usecases.place_order(cluster, "ann", "ax-nl", "NL", "ubuntu-24.04")
    return accepted["order"]["id"], accepted["operation"]["id"]


def run_until_settled(usecases, cluster, clock, order_id, rounds=10):
    for _ in range(rounds):
        status = usecases.advance(cluster, order_id)
        if status in ("completed", "failed"):
            return status
        clock.advance(600)  # past any retry delay
    return usecases.get_order("ann", order_id)["status"]


def claimed(usecases):
    with usecases.store.engine.connect() as conn:
        return conn.execute(unit_claims.select()).mappings().all()


def test_nothing_fails_one_charge_one_server_one_sold_unit(saga):
    usecases, cluster, clock = saga
    order_id, operation_id = place(usecases, cluster)
    assert run_until_settled(usecases, cluster, clock, order_id) == "completed"
    assert cluster.billing.balance == Decimal("70.00")
    assert len(cluster.inventory.servers) == 1
    assert [c["status"] for c in claimed(usecases)] == ["sold"]
    assert usecases.operations.get(operation_id)["status"] == "succeeded"


def test_the_balance_spent_before_the_charge_fails_the_order_and_frees_the_unit(saga):
    usecases, cluster, clock = saga
    order_id, operation_id = place(usecases, cluster)
    cluster.billing.balance = Decimal("10.00")  # spent elsewhere after the order was accepted
    assert run_until_settled(usecases, cluster, clock, order_id) == "failed"
    assert cluster.billing.balance == Decimal("10.00") and cluster.inventory.servers == {}
    assert claimed(usecases) == []
    assert "does not cover" in usecases.operations.get(operation_id)["detail"]


def test_billing_unreachable_for_good_gives_up_after_the_attempts_and_frees_the_unit(saga):
    usecases, cluster, clock = saga
    order_id, _ = place(usecases, cluster)
    cluster.billing.fail["charge"] = [ServiceUnavailable("billing did not answer")] * 3
    assert run_until_settled(usecases, cluster, clock, order_id) == "failed"
    assert cluster.billing.balance == Decimal("100.00") and claimed(usecases) == []
    assert "gave up after 3 attempts" in usecases.get_order("ann", order_id)["reason"]


def test_a_charge_whose_answer_was_lost_is_not_taken_twice(saga):
    usecases, cluster, clock = saga
    order_id, _ = place(usecases, cluster)
    cluster.billing.fail["charge_after"] = [ServiceUnavailable("time-out")]
    assert run_until_settled(usecases, cluster, clock, order_id) == "completed"
    assert cluster.billing.balance == Decimal("70.00")


def test_a_charge_whose_answer_was_lost_and_then_billing_stays_down_is_refunded(saga):
    usecases, cluster, clock = saga
    order_id, _ = place(usecases, cluster)
    cluster.billing.fail["charge_after"] = [ServiceUnavailable("time-out")]
    cluster.billing.fail["charge"] = [None] + [ServiceUnavailable("billing did not answer")] * 2
    assert run_until_settled(usecases, cluster, clock, order_id) == "failed"
    assert cluster.billing.balance == Decimal("100.00")  # the lost charge came back
    assert claimed(usecases) == []


def test_inventory_refusing_the_delivery_refunds_and_frees_the_unit(saga):
    usecases, cluster, clock = saga
    order_id, operation_id = place(usecases, cluster)
    cluster.inventory.fail = [error_with_code(Conflict, "bmc_error", "The BMC refused.")]
    assert run_until_settled(usecases, cluster, clock, order_id) == "failed"
    assert cluster.billing.balance == Decimal("100.00") and cluster.inventory.servers == {}
    assert claimed(usecases) == []
    assert "30.00 EUR went back" in usecases.operations.get(operation_id)["detail"]


def test_inventory_unreachable_for_a_while_still_delivers(saga):
    usecases, cluster, clock = saga
    order_id, _ = place(usecases, cluster)
    cluster.inventory.fail = [ServiceUnavailable("inventory did not answer")] * 2
    assert run_until_settled(usecases, cluster, clock, order_id) == "completed"
    assert len(cluster.inventory.servers) == 1 and cluster.billing.balance == Decimal("70.00")


def test_a_refund_that_fails_is_retried_until_the_money_is_back(saga):
    usecases, cluster, clock = saga
    order_id, _ = place(usecases, cluster)
    cluster.inventory.fail = [ValidationFailed("bad", fields={"ips": ["x"]})]
    cluster.billing.fail["refund"] = [ServiceUnavailable("billing did not answer")] * 5
    assert run_until_settled(usecases, cluster, clock, order_id) == "failed"
    assert cluster.billing.balance == Decimal("100.00") and claimed(usecases) == []


def test_a_crash_after_the_charge_resumes_without_charging_again(saga):
    usecases, cluster, clock = saga
    order_id, _ = place(usecases, cluster)
    # What a killed worker sees: its greenthread ends in the middle of the delivery.
    cluster.inventory.fail = [GreenletExit()]
    with pytest.raises(GreenletExit):
        usecases.advance(cluster, order_id)
    clock.advance(60)
    assert usecases.due_orders() == [order_id]  # the scheduler finds it
    usecases.run_scheduler(cluster)
    assert usecases.get_order("ann", order_id)["status"] == "completed"
    assert cluster.billing.balance == Decimal("70.00") and len(cluster.inventory.servers) == 1


def test_orders_for_the_last_unit_from_many_greenthreads_sell_it_once(saga):
    import eventlet

    usecases, cluster, clock = saga
    outcomes = []

    def order():
        try:
            outcomes.append(place(usecases, cluster))
        except Conflict as refusal:
            outcomes.append(refusal.code)

    pool = eventlet.GreenPool()
    for _ in range(6):
        pool.spawn(order)
    pool.waitall()
    placed = [outcome for outcome in outcomes if isinstance(outcome, tuple)]
    assert len(placed) == 2 and outcomes.count("out_of_stock") == 4  # the offer has two units
    assert sorted(c["order_id"] for c in claimed(usecases)) == sorted(order_id for order_id, _ in placed)


def test_a_step_that_keeps_crashing_is_compensated_after_its_attempts(saga):
    usecases, cluster, clock = saga
    order_id, operation_id = place(usecases, cluster)
    cluster.inventory.fail = [KeyError("server_id")] * 3  # a bug in the answer's handling, every time
    assert run_until_settled(usecases, cluster, clock, order_id) == "failed"
    assert cluster.billing.balance == Decimal("100.00") and claimed(usecases) == []
    assert "internal error" in usecases.get_order("ann", order_id)["reason"]


def test_a_retry_waits_for_its_time(saga):
    usecases, cluster, clock = saga
    order_id, _ = place(usecases, cluster)
    cluster.billing.fail["charge"] = [ServiceUnavailable("billing did not answer")]
    assert usecases.advance(cluster, order_id) == "placed"
    assert usecases.due_orders() == []
    clock.advance(timedelta(seconds=1).total_seconds())
    assert usecases.due_orders() == [order_id]
    assert usecases.advance(cluster, order_id) == "completed"


STOCK_OFFERS = catalog.parse_catalog({"stock": [
    {"id": "st-nl", "name": "ST", "location": "NL", "virtual": False, "ram_gb": 64, "disks": ["2 TB"],
     "cpu": {"vendor": "Intel", "family": "Xeon", "microarchitecture": "Ice Lake", "model": "4314", "count": 1,
             "cores": 16}, "gpu": None, "price_month": "40.00", "units": 1}]})


@pytest.fixture
def stock_saga(saga):
    usecases, cluster, clock = saga
    usecases.offers = STOCK_OFFERS
    return saga


def place_stock(usecases, cluster):
    accepted = usecases.place_order(cluster, "ann", "st-nl", "NL", "ubuntu-24.04")
    return accepted["order"]["id"], accepted["operation"]["id"]


def test_a_stock_order_cancelled_while_it_waits_is_refunded_and_its_unit_released(stock_saga):
    usecases, cluster, clock = stock_saga
    order_id, operation_id = place_stock(usecases, cluster)
    assert usecases.advance(cluster, order_id) == "paid"  # charged, waiting for its deploy date
    assert cluster.billing.balance == Decimal("60.00")
    cancelled = usecases.cancel_order(cluster, "ann", order_id)
    assert cancelled["status"] == "cancelled" and cancelled["reason"] == "Cancelled at your request."
    assert cluster.billing.balance == Decimal("100.00") and claimed(usecases) == []
    assert cluster.inventory.servers == {}
    assert "40.00 EUR went back" in usecases.operations.get(operation_id)["detail"]
    clock.advance(10 * 24 * 3600)
    usecases.run_scheduler(cluster)  # its deploy date passes: nothing is delivered
    assert cluster.inventory.servers == {} and usecases.get_order("ann", order_id)["status"] == "cancelled"


def test_an_order_being_delivered_or_delivered_cannot_be_cancelled(stock_saga):
    usecases, cluster, clock = stock_saga
    order_id, _ = place_stock(usecases, cluster)
    usecases.advance(cluster, order_id)
    clock.advance(10 * 24 * 3600)
    cluster.inventory.fail = [ServiceUnavailable("inventory did not answer")]  # delivery started, then stalled
    usecases.advance(cluster, order_id)
    with pytest.raises(Conflict) as refused:
        usecases.cancel_order(cluster, "ann", order_id)
    assert refused.value.code == "order_not_cancellable"
    clock.advance(600)
    assert usecases.advance(cluster, order_id) == "completed"
    with pytest.raises(Conflict):
        usecases.cancel_order(cluster, "ann", order_id)
    assert cluster.billing.balance == Decimal("60.00") and len(cluster.inventory.servers) == 1


def test_another_customers_order_cannot_be_cancelled(stock_saga):
    usecases, cluster, _ = stock_saga
    order_id, _ = place_stock(usecases, cluster)
    with pytest.raises(NotFound):
        usecases.cancel_order(cluster, "bob", order_id)


def test_a_delivery_done_meanwhile_by_another_worker_is_a_clean_no_op(saga, caplog):
    """A redelivered event (or the scheduler on another replica) delivers the order while
    this worker waits on inventory: this worker then finds the operation succeeded and
    stops, without an error, a counted attempt or a second server (issue 20)."""
    usecases, cluster, clock = saga
    order_id, operation_id = place(usecases, cluster)
    other_worker_ran, racing = [], []

    class RacingInventory(Inventory):
        @property
        def provision_server(self):
            real = Inventory.provision_server.fget(self)

            class Call:
                def call(self, *args, **kwargs):
                    if not racing:  # the other replica gets there first
                        racing.append(True)
                        other_worker_ran.append(usecases.advance(cluster, order_id))
                    return real.call(*args, **kwargs)

            return Call()

    cluster.inventory = inventory = RacingInventory()
    with caplog.at_level("ERROR"):
        assert usecases.advance(cluster, order_id) == "completed"
    assert other_worker_ran == ["completed"]
    assert not [r for r in caplog.records if "failed unexpectedly" in r.getMessage()]
    order = usecases.get_order("ann", order_id)
    assert order["status"] == "completed" and len(inventory.servers) == 1
    assert cluster.billing.balance == Decimal("70.00")
    assert usecases.operations.get(operation_id)["status"] == "succeeded"
