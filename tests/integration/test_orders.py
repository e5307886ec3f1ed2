"""Ordering through the gateway (R-INST-1/2, R-STOCK-1…3): the real orders, billing and
inventory services and the gateway on a real broker; accounts funded through the payments
sandbox (a signed provider notification); catalog units bound to systems of a real Redfish
emulator. A small catalog of the test's own keeps the stock counts easy to reason about."""

import base64
import json
import sys
import threading
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
import yaml
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import event as sa_event

from common import topology
from common.db import create_engine
from deploy.components import migrate
from gateway.service import GatewayService
from gateway.sessions import SessionStore
from services.billing.service import BillingService
from services.inventory.service import InventoryService
from services.orders.catalog import parse_catalog
from services.orders.projections import orders as order_rows
from services.orders.projections import schema
from services.orders.service import OrdersService
from services.orders.usecases import OrdersUseCases
from tests.bmc import running_bmc
from tests.support import ChildProcess, free_port, http_ok, store_of, wait_for

CPU = {"vendor": "AMD", "family": "Ryzen", "microarchitecture": "Zen 3", "model": "Ryzen 5 5600X", "count": 1,
       "cores": 6}
CATALOG = {
    "instant": [
        {"id": "ax-nl", "name": "AX Test", "location": "NL", "virtual": False, "cpu": CPU, "ram_gb": 64,
         "disks": ["2x 512 GB NVMe"], "gpu": None, "price_month": "30.00", "units": 4},
        {"id": "solo-nl", "name": "Solo", "location": "NL", "virtual": False, "cpu": CPU, "ram_gb": 64,
         "disks": ["1 TB NVMe"], "gpu": {"model": "RTX 4000", "count": 1, "mode": "dedicated"},
         "price_month": "35.00", "units": 1},
        # Its unit's system is not on the emulator: delivery fails and the order is compensated.
        {"id": "ghost-nl", "name": "Ghost", "location": "NL", "virtual": False, "cpu": CPU, "ram_gb": 64,
         "disks": ["1 TB NVMe"], "gpu": None, "price_month": "25.00", "units": 1},
    ],
    "stock": [
        {"id": "st-nl", "name": "Stock Test", "location": "NL", "virtual": False, "cpu": CPU, "ram_gb": 64,
         "disks": ["2x 2 TB HDD"], "gpu": None, "price_month": "20.00", "units": 2},
    ],
}
OFFERS = parse_catalog(CATALOG)


class Shop:
    def __init__(self, amqp_uri, api, sandbox, sessions, bmc):
        self.amqp_uri, self.api, self.sandbox, self.sessions, self.bmc = amqp_uri, api, sandbox, sessions, bmc
        self.tokens = {}

    def login(self, user_id):
        self.tokens[user_id], _ = self.sessions.create(f"session-{user_id}-{uuid.uuid4().hex[:6]}", user_id)

    def headers(self, user_id, **extra):
        return {"Authorization": f"Bearer {self.tokens[user_id]}", **extra}

    def get(self, path, user_id="ann", **kwargs):
        return requests.get(f"{self.api}{path}", headers=self.headers(user_id), timeout=30, **kwargs)

    def post(self, path, body, user_id="ann", **headers):
        return requests.post(f"{self.api}{path}", json=body, headers=self.headers(user_id, **headers), timeout=30)

    def fund(self, user_id, amount):
        """Top up through stripe in the sandbox; wait until the signed notification is credited."""
        before = float(self.balance(user_id))
        topup = self.post("/billing/topups", {"amount": amount, "method": "stripe"}, user_id).json()
        paid = requests.post(f"{self.sandbox}/payments/{topup['provider_payment_id']}/complete",
                             json={"outcome": "succeeded"}, timeout=10)
        assert paid.status_code in (200, 202), paid.text
        wait_for(lambda: float(self.balance(user_id)) == before + float(amount), timeout=20, message="credited")

    def balance(self, user_id="ann"):
        return self.get("/billing/account", user_id).json()["balance"]

    def order(self, offer_id, user_id="ann", key=None, **body):
        offer = OFFERS.get(offer_id, {"location": "NL"})
        payload = {"offer_id": offer_id, "location": offer["location"], "os": "ubuntu-24.04", **body}
        return self.post("/orders", payload, user_id, **({"Idempotency-Key": key} if key else {}))

    def wait_operation(self, operation_id, user_id="ann", timeout=60):
        def finished():
            operation = self.get(f"/operations/{operation_id}", user_id).json()
            return operation if operation["status"] in ("succeeded", "failed") else None

        return wait_for(finished, timeout=timeout, interval=0.1, message=f"operation {operation_id} finished")

    def servers(self, user_id="ann"):
        return self.get("/servers", user_id).json()["items"]

    def rpc(self, service):
        return ServiceRpcProxy(service, {"AMQP_URI": self.amqp_uri})

    def available(self, kind, offer_id):
        items = self.get(f"/catalog/{kind}").json()["items"]
        return next(item["available"] for item in items if item["id"] == offer_id)


@pytest.fixture
def shop(start_service, amqp_uri, tmp_path):
    catalog_file = tmp_path / "offers.yaml"
    catalog_file.write_text(yaml.safe_dump(CATALOG))
    systems = [{"uuid": unit["system_id"], "name": unit["unit_id"], "power_state": "Off"}
               for offer in OFFERS.values() if offer["id"] != "ghost-nl" for unit in offer["units"]]
    urls = {name: f"sqlite:///{tmp_path / (name + '.db')}" for name in ("billing", "inventory", "orders", "gateway")}
    for name, url in urls.items():
        migrate(name, create_engine(url))
    gateway_port, sandbox_port = free_port(), free_port()
    api = f"http://127.0.0.1:{gateway_port}/api/v1"
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    sandbox = ChildProcess("payments sandbox", [sys.executable, "-m", "deploy.standins.payments", "--port",
                                                str(sandbox_port), "--webhook-base", f"{api}/billing/webhooks"],
                           Path(tmp_path) / "payments.log")
    images_port = free_port()
    images = ChildProcess("OS images", [sys.executable, "-m", "deploy.standins.images", "--port", str(images_port),
                                        "--directory", str(tmp_path / "images")], Path(tmp_path) / "images.log")
    images_url = f"http://127.0.0.1:{images_port}"
    wait_for(lambda: images.check_alive() or http_ok(f"{images_url}/debian-12-amd64-netinst.iso"),
             message="the OS image stand-in")
    with running_bmc(tmp_path / "bmc", systems) as bmc:
        topology.declare(amqp_uri, [BillingService, InventoryService, OrdersService])
        start_service(BillingService, DATABASE_URL=urls["billing"], METRICS_PORT="off", PAYMENTS_BASE_URL=sandbox_url,
                      DEV_CREDENTIALS=True, OUTBOX_POLL_SECONDS=0.2)
        start_service(InventoryService, DATABASE_URL=urls["inventory"], METRICS_PORT="off", OUTBOX_POLL_SECONDS=0.2,
                      OS_IMAGE_BASE_URL=images_url, **bmc.config)
        orders_config = dict(DATABASE_URL=urls["orders"], METRICS_PORT="off", OUTBOX_POLL_SECONDS=0.2,
                             CATALOG_FILE=str(catalog_file), BMC_ENDPOINT=bmc.endpoint, CLOCK_ADJUSTABLE=True,
                             ORDER_SCHEDULER_SECONDS=0.5, ORDER_RETRY_BASE_SECONDS=0.5, ORDER_MAX_ATTEMPTS=3,
                             PROVISION_TIMEOUT_SECONDS=30)
        orders_container = start_service(OrdersService, **orders_config)
        start_service(GatewayService, WEB_SERVER_ADDRESS=f"127.0.0.1:{gateway_port}", DATABASE_URL=urls["gateway"],
                      METRICS_PORT="off", SESSION_COOKIE_SECURE=False)
        wait_for(lambda: sandbox.check_alive() or http_ok(f"{sandbox_url}/payments"), message="payments sandbox")
        shop = Shop(amqp_uri, api, sandbox_url, SessionStore(create_engine(urls["gateway"])), bmc)
        shop.orders_container, shop.orders_config, shop.start_service = orders_container, orders_config, start_service
        for user in ("ann", "bob"):
            shop.login(user)
        yield shop
        sandbox.terminate()
        sandbox.stop()
    images.terminate()
    images.stop()


def test_catalogs_list_offers_by_category_and_location(shop):
    instant = shop.get("/catalog/instant").json()
    assert {item["id"] for item in instant["items"]} == {"ax-nl", "solo-nl", "ghost-nl"}
    assert [item["id"] for item in shop.get("/catalog/instant", params={"category": "gpu"}).json()["items"]] == [
        "solo-nl"]
    assert shop.get("/catalog/instant", params={"category": "vps"}).json()["items"] == []
    # a location is a filter: none offered there is an empty list; a malformed one a 400
    assert shop.get("/catalog/instant", params={"location": "US"}).json()["items"] == []
    malformed = shop.get("/catalog/instant", params={"location": "nl-1"})
    assert malformed.status_code == 400 and "location" in malformed.json()["error"]["fields"]
    stock = shop.get("/catalog/stock", params={"category": "1cpu"}).json()["items"]
    assert [(item["id"], item["available"]) for item in stock] == [("st-nl", 2)]
    now = datetime.now(timezone.utc)
    assert now + timedelta(hours=23) < datetime.fromisoformat(stock[0]["deploy_eta"]) <= now + timedelta(days=4)
    unknown = shop.get("/catalog/stock", params={"category": "arm"})
    assert unknown.status_code == 400 and "category" in unknown.json()["error"]["fields"]
    assert shop.get("/catalog/rented").status_code == 404


def test_an_instant_order_delivers_a_server_powered_through_redfish_and_charged_in_the_ledger(shop):
    shop.fund("ann", 50)
    answer = shop.order("ax-nl", tag="shop-1")
    assert answer.status_code == 202, answer.text
    order, operation = answer.json()["order"], answer.json()["operation"]
    assert order["status"] == "placed" and operation["kind"] == "order.instant"
    assert shop.wait_operation(operation["id"])["status"] == "succeeded"

    order = shop.get(f"/orders/{order['id']}").json()
    assert order["status"] == "completed"
    servers = shop.servers()
    assert [(s["id"], s["tag"], s["power"]) for s in servers] == [(order["server_id"], "shop-1", "on")]
    unit = OFFERS["ax-nl"]["units"][0]
    system = {"uuid": unit["system_id"]}
    # Delivered through Redfish: the chosen OS's installer inserted, booted once, powered on.
    assert shop.bmc.power_state(system) == "On"
    cd = shop.bmc.virtual_cd(system)
    assert cd["Inserted"] is True and cd["Image"].endswith("/ubuntu-24.04-server-amd64.iso")
    assert shop.bmc.boot(system)["BootSourceOverrideTarget"] == "Cd"
    assert "being installed" in shop.get(f"/operations/{operation['id']}").json()["detail"]
    assert servers[0]["ip"] == unit["ips"][0]

    off = shop.post(f"/servers/{order['server_id']}/actions", {"action": "power_off"})
    assert off.status_code == 202
    assert shop.wait_operation(off.json()["operation"]["id"])["status"] == "succeeded"
    assert shop.bmc.power_state(system) == "Off"

    assert shop.balance() == "20.00"
    ledger = shop.get("/billing/transactions").json()["items"]
    assert (ledger[0]["direction"], ledger[0]["amount"], ledger[0]["reason"], ledger[0]["reference"]) == (
        "debit", "30.00", "order", f"order-{order['id']}")
    assert shop.available("instant", "ax-nl") == 3
    assert shop.get("/orders").json()["items"][0]["id"] == order["id"]


def test_insufficient_funds_is_refused_before_anything_is_reserved(shop):
    shop.fund("ann", 25)
    answer = shop.order("ax-nl")
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "insufficient_funds"
    assert shop.available("instant", "ax-nl") == 4
    assert shop.get("/orders").json()["total"] == 0
    assert shop.balance() == "25.00"


def test_bad_orders_name_the_field(shop):
    shop.fund("ann", 50)
    assert set(shop.order("nope-nl").json()["error"]["fields"]) == {"offer_id"}
    assert set(shop.order("ax-nl", location="US").json()["error"]["fields"]) == {"location"}
    assert set(shop.order("ax-nl", os="windows-95").json()["error"]["fields"]) == {"os"}
    assert set(shop.post("/orders", {"offer_id": "ax-nl"}).json()["error"]["fields"]) == {"location", "os"}


def test_order_lists_page_up_to_500_like_every_list(shop):
    assert shop.get("/orders", params={"per_page": 500}).json()["per_page"] == 500
    too_many = shop.get("/orders", params={"per_page": 501})
    assert too_many.status_code == 400 and set(too_many.json()["error"]["fields"]) == {"per_page"}


def seed_orders(shop, placed):
    """Orders straight into the read model (``placed``: (order_id, user_id, status,
    created_at)); none is due, so the saga leaves them alone."""
    with store_of(shop.orders_container).engine.begin() as conn:
        for order_id, user_id, status, at in placed:
            conn.execute(order_rows.insert().values(
                order_id=order_id, user_id=user_id, offer_id="ax-nl", kind="instant", name="AX Test", location="NL",
                os="ubuntu-24.04", price_month="30.00", status=status, operation_id=f"orders:{order_id}",
                created_at=at, updated_at=at))


def walk(shop, how, **params):
    """Every order of ann's list, ``how`` = "page" (page 1, 2, … until the total) or
    "cursor" (next_cursor until null); the ids in the order they came."""
    ids, query = [], {"per_page": 2, **params}
    for step in range(1, 20):
        answer = shop.get("/orders", params=query)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        ids += [order["id"] for order in body["items"]]
        if how == "page":
            if step * body["per_page"] >= body["total"]:
                return ids
            query = {**query, "page": step + 1}
        else:
            if body["next_cursor"] is None:
                return ids
            query = {**query, "cursor": body["next_cursor"]}
    raise AssertionError(f"no end after {step} pages: {ids}")


def test_the_order_list_pages_back_by_cursor_as_it_does_by_page_ties_included(shop):
    """Issue 21: a cursor page is where the previous one ended, also inside a run of orders
    placed at the same instant (there the id decides)."""
    at = ["2026-12-01T10:00:00.000000+00:00", "2026-12-02T10:00:00.000000+00:00", "2026-12-03T10:00:00.000000+00:00"]
    placed = [("o-a", "ann", "completed", at[0]), ("o-b", "ann", "failed", at[1]), ("o-e", "ann", "completed", at[1]),
              ("o-c", "ann", "completed", at[1]), ("o-d", "ann", "failed", at[1]), ("o-f", "ann", "completed", at[2]),
              ("o-g", "ann", "completed", at[2]), ("o-x", "bob", "completed", at[1])]
    seed_orders(shop, placed)
    newest_first = ["o-g", "o-f", "o-e", "o-d", "o-c", "o-b", "o-a"]

    assert walk(shop, "page") == newest_first  # pages of 2 end inside the run at at[1]
    assert walk(shop, "cursor") == newest_first
    completed = [order_id for order_id in newest_first if dict((p[0], p[2]) for p in placed)[order_id] == "completed"]
    assert walk(shop, "cursor", status="completed") == walk(shop, "page", status="completed") == completed
    last = shop.get("/orders", params={"per_page": 7}).json()
    assert (len(last["items"]), last["next_cursor"]) == (7, None)
    assert shop.get("/orders", "bob").json()["next_cursor"] is None

    forged = base64.urlsafe_b64encode(json.dumps(["yesterday", "o-c"]).encode()).decode()
    for bad in ("last", forged, "o-c"):
        answer = shop.get("/orders", params={"cursor": bad})
        assert answer.status_code == 400 and set(answer.json()["error"]["fields"]) == {"cursor"}, (bad, answer.text)


def test_a_cursor_page_of_orders_reads_through_the_lists_index(shop):
    """Issue 21: the database's plan of a cursor page starts at the cursor in the list's own
    index (no sort, no walk of the customer's newer orders)."""
    seed_orders(shop, [(f"o-{n:02}", "ann", "completed", f"2026-12-01T10:00:{n % 5:02}.000000+00:00")
                       for n in range(12)])
    engine = create_engine(shop.orders_config["DATABASE_URL"])
    use_cases = OrdersUseCases(schema.create_store(engine), None, None, {}, {})
    cursor = use_cases.list_orders("ann", per_page=5)["next_cursor"]
    for status in (None, "completed"):
        statements = []

        def record(conn, cur, statement, parameters, context, many):
            statements.append((statement, parameters))

        sa_event.listen(engine, "before_cursor_execute", record)
        try:
            assert len(use_cases.list_orders("ann", status, per_page=5, cursor=cursor)["items"]) == 5
        finally:
            sa_event.remove(engine, "before_cursor_execute", record)
        statement, parameters = next((s, p) for s, p in statements if "ORDER BY orders.created_at DESC" in s)
        with engine.connect() as conn:
            plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)]
        index = "ix_orders_user_status_created_id" if status else "ix_orders_user_created_id"
        assert [line for line in plan if f"INDEX {index} (user_id=?" in line
                and "(created_at,order_id)<(?,?)" in line], plan
        assert not [line for line in plan if "TEMP B-TREE" in line or line.startswith("SCAN")], plan


def test_two_customers_racing_for_the_last_unit_one_gets_it_and_the_other_is_out_of_stock(shop):
    shop.fund("ann", 40)
    shop.fund("bob", 40)
    answers = {}
    start = threading.Barrier(2)

    def race(user):
        start.wait()
        answers[user] = shop.order("solo-nl", user)

    threads = [threading.Thread(target=race, args=(user,)) for user in ("ann", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(answer.status_code for answer in answers.values())
    assert codes == [202, 409], {u: a.text for u, a in answers.items()}
    loser = next(user for user, answer in answers.items() if answer.status_code == 409)
    winner = next(user for user, answer in answers.items() if answer.status_code == 202)
    assert answers[loser].json()["error"]["code"] == "out_of_stock"
    assert shop.wait_operation(answers[winner].json()["operation"]["id"], winner)["status"] == "succeeded"
    assert len(shop.servers(winner)) == 1 and shop.servers(loser) == []
    assert shop.balance(loser) == "40.00" and shop.balance(winner) == "5.00"
    assert shop.available("instant", "solo-nl") == 0


def test_a_retried_order_with_the_same_idempotency_key_places_nothing_new(shop):
    shop.fund("ann", 80)
    first = shop.order("ax-nl", key="order-once")
    again = shop.order("ax-nl", key="order-once")
    assert first.status_code == again.status_code == 202
    assert again.json()["order"]["id"] == first.json()["order"]["id"]
    shop.wait_operation(first.json()["operation"]["id"])
    assert shop.get("/orders").json()["total"] == 1
    assert shop.balance() == "50.00"
    assert len(shop.servers()) == 1

    other = shop.order("ax-nl", key="order-once", os="debian-12")  # the key, for another order
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert shop.get("/orders").json()["total"] == 1


def test_a_delivery_that_fails_refunds_the_charge_and_releases_the_unit(shop):
    shop.fund("ann", 30)
    answer = shop.order("ghost-nl")
    assert answer.status_code == 202
    operation = shop.wait_operation(answer.json()["operation"]["id"])
    assert operation["status"] == "failed"
    assert "could not be set up" in operation["detail"] and "25.00 EUR went back" in operation["detail"]
    order = shop.get(f"/orders/{answer.json()['order']['id']}").json()
    assert order["status"] == "failed" and order["reason"]
    assert shop.balance() == "30.00"
    reasons = [(t["direction"], t["reason"]) for t in shop.get("/billing/transactions").json()["items"]]
    assert reasons[:2] == [("credit", "refund"), ("debit", "order")]
    assert shop.servers() == []
    assert shop.available("instant", "ghost-nl") == 1


def test_a_stock_order_is_delivered_when_its_business_day_has_passed(shop):
    shop.fund("ann", 20)
    answer = shop.order("st-nl")
    assert answer.status_code == 202
    order = answer.json()["order"]
    assert order["kind"] == "stock" and order["deploy_eta"] > order["created_at"]
    wait_for(lambda: shop.get(f"/orders/{order['id']}").json()["status"] == "paid", message="charged")
    assert shop.servers() == [] and shop.balance() == "0.00"
    with shop.rpc("orders") as orders:
        orders.advance_clock(4 * 24 * 3600)  # past any weekend and holiday
        orders.run_scheduler()
    assert shop.wait_operation(order["operation_id"])["status"] == "succeeded"
    assert shop.get(f"/orders/{order['id']}").json()["status"] == "completed"
    assert len(shop.servers()) == 1


def test_another_customers_order_is_not_found(shop):
    shop.fund("ann", 40)
    order = shop.order("ax-nl").json()["order"]
    assert shop.get(f"/orders/{order['id']}", "bob").status_code == 404
    assert shop.get(f"/operations/{order['operation_id']}", "bob").status_code == 404
    assert shop.get("/orders", "bob").json()["total"] == 0


def test_killing_the_orders_service_mid_saga_and_restarting_it_completes_the_order_once(shop):
    shop.fund("ann", 40)
    answer = shop.order("ax-nl")
    assert answer.status_code == 202
    order_id = answer.json()["order"]["id"]
    # Kill it while inventory is powering the machine on (the emulator takes seconds).
    wait_for(lambda: shop.get(f"/orders/{order_id}").json()["status"] == "paid", interval=0.02, message="charged")
    shop.orders_container.kill()
    shop.start_service(OrdersService, **shop.orders_config)
    assert shop.wait_operation(answer.json()["operation"]["id"])["status"] == "succeeded"
    assert shop.get(f"/orders/{order_id}").json()["status"] == "completed"
    assert len(shop.servers()) == 1
    assert shop.balance() == "10.00"
    debits = [t for t in shop.get("/billing/transactions").json()["items"] if t["direction"] == "debit"]
    assert len(debits) == 1


def test_a_stock_order_cancelled_before_its_deploy_date_is_refunded(shop):
    shop.fund("ann", 20)
    order = shop.order("st-nl").json()["order"]
    wait_for(lambda: shop.get(f"/orders/{order['id']}").json()["status"] == "paid", message="charged")
    assert shop.balance() == "0.00" and shop.available("stock", "st-nl") == 1
    cancelled = shop.post(f"/orders/{order['id']}/cancel", {})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert shop.balance() == "20.00" and shop.available("stock", "st-nl") == 2
    assert shop.wait_operation(order["operation_id"])["status"] == "failed"
    assert shop.get("/orders", params={"status": "cancelled"}).json()["total"] == 1
    again = shop.post(f"/orders/{order['id']}/cancel", {})
    assert again.status_code == 409 and again.json()["error"]["code"] == "order_not_cancellable"
    assert shop.post(f"/orders/{order['id']}/cancel", {}, "bob").status_code == 404
    assert shop.servers() == []
