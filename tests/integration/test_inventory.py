"""Service management through the gateway (R-SRV-1…6, R-ASYNC-1/2): the real inventory
service and gateway on a real RabbitMQ, servers bound to systems of a real Redfish
emulator (sushy-emulator) reached with the sushy client."""

import csv
import io
import subprocess
import sys

import pytest
import requests
from nameko.standalone.rpc import ServiceRpcProxy

from common.config import REPO_ROOT
from common.db import create_engine
from deploy.components import migrate
from gateway.idempotency import idempotent_requests
from gateway.service import GatewayService
from gateway.sessions import SessionStore
from services.inventory.service import InventoryService
from tests.support import free_port, http_ok, store_of, wait_for

HARDWARE = {"cpu": "AMD EPYC 7443P", "cpu_count": 1, "ram_gb": 128, "disks": ["2x 960 GB NVMe"], "gpu": None}



class Panel:
    def __init__(self, amqp_uri, base_url, session_store, bmc):
        self.amqp_uri = amqp_uri
        self.base_url = base_url
        self.sessions = session_store
        self.bmc = bmc
        self.tokens = {}
        self.next_system = 0

    def login_as(self, user_id):
        token, _ = self.sessions.create(f"session-{user_id}", user_id)
        self.tokens[user_id] = token
        return token

    def get(self, path, user, **kwargs):
        return requests.get(f"{self.base_url}/api/v1{path}", headers={"Authorization": f"Bearer {self.tokens[user]}"},
                            timeout=15, **kwargs)

    def post(self, path, user, body):
        return requests.post(f"{self.base_url}/api/v1{path}", json=body, timeout=15,
                             headers={"Authorization": f"Bearer {self.tokens[user]}"})

    def patch(self, path, user, body):
        return requests.patch(f"{self.base_url}/api/v1{path}", json=body, timeout=15,
                              headers={"Authorization": f"Bearer {self.tokens[user]}"})

    def provision(self, user_id, location="NL", ips=None, tag=None, silent=False, paid_until="2026-12-31"):
        if silent:
            binding = {"endpoint": self.bmc.silent_endpoint, "system_id": "silent"}
        else:
            system = self.bmc.systems[self.next_system % len(self.bmc.systems)]
            self.next_system += 1
            binding = {"endpoint": self.bmc.endpoint, "system_id": system["uuid"]}
        with ServiceRpcProxy("inventory", {"AMQP_URI": self.amqp_uri}) as inventory:
            return inventory.provision_server(user_id, location, "Dedicated AX41", HARDWARE,
                                              ips or [f"203.0.113.{self.next_system + 10}"], "ubuntu-24.04",
                                              binding, paid_until, "49.00", tag)

    def set_overdue(self, server_id):
        with ServiceRpcProxy("inventory", {"AMQP_URI": self.amqp_uri}) as inventory:
            inventory.set_overdue(server_id, True)

    def wait_operation(self, user, operation_id, timeout=30):
        def finished():
            operation = self.get(f"/operations/{operation_id}", user).json()
            return operation if operation["status"] in ("succeeded", "failed") else None

        return wait_for(finished, timeout=timeout, interval=0.1, message=f"operation {operation_id} finished")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """The OS image stand-in (the emulator downloads what a reinstall inserts)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "deploy.standins.images", "--port", str(port),
                                "--directory", str(tmp_path_factory.mktemp("images"))], cwd=REPO_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: http_ok(f"{url}/debian-12-amd64-netinst.iso"), message="image server")
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture
def panel(start_service, amqp_uri, tmp_path, bmc, images):
    inventory_url = f"sqlite:///{tmp_path / 'inventory.db'}"
    gateway_url = f"sqlite:///{tmp_path / 'gateway.db'}"
    migrate("inventory", create_engine(inventory_url))
    migrate("gateway", create_engine(gateway_url))
    inventory_config = dict(bmc.config, DATABASE_URL=inventory_url, METRICS_PORT="off", BMC_TIMEOUT_SECONDS=2,
                            BMC_POWER_WAIT_SECONDS=20, OS_IMAGE_BASE_URL=images)
    inventory = start_service(InventoryService, **inventory_config)
    port = free_port()
    start_service(GatewayService, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}", DATABASE_URL=gateway_url,
                  METRICS_PORT="off", SESSION_COOKIE_SECURE=False)
    panel = Panel(amqp_uri, f"http://127.0.0.1:{port}", SessionStore(create_engine(gateway_url)), bmc)
    panel.inventory_container = inventory
    panel.inventory_config = inventory_config
    panel.login_as("ann")
    panel.login_as("bob")
    return panel


@pytest.fixture
def fleet(panel):
    """Ann: 3 servers in NL (one overdue, one tagged) and 2 in US; Bob: 2 in NL."""
    ann = [panel.provision("ann", "NL", ["198.51.100.10"], tag="web-1"),
           panel.provision("ann", "NL", ["198.51.100.11", "2001:db8::11"]),
           panel.provision("ann", "NL", ["198.51.100.12"]),
           panel.provision("ann", "US", ["192.0.2.20"], tag="db-primary"),
           panel.provision("ann", "US", ["192.0.2.21"])]
    bob = [panel.provision("bob", "NL", ["198.51.100.99"], tag="web-1"),
           panel.provision("bob", "NL", ["198.51.100.98"])]
    panel.set_overdue(ann[2]["id"])
    return {"ann": ann, "bob": bob}


def numbers(answer):
    return sorted(item["number"] for item in answer.json()["items"])


# -- R-SRV-1/2/3/5: list, filters, search ------------------------------------------------

def test_the_list_shows_only_the_customers_own_servers(panel, fleet):
    answer = panel.get("/servers", "ann")
    assert answer.status_code == 200
    body = answer.json()
    assert body["total"] == 5 and body["page"] == 1 and body["per_page"] == 50
    assert numbers(answer) == sorted(s["number"] for s in fleet["ann"])
    item = body["items"][0]
    assert set(item) >= {"id", "number", "tag", "ip", "location", "status", "power", "plan", "paid_until"}


def test_filters_by_location_and_status_combine(panel, fleet):
    assert panel.get("/servers", "ann", params={"location": "US"}).json()["total"] == 2
    overdue = panel.get("/servers", "ann", params={"status": "overdue"})
    assert numbers(overdue) == [fleet["ann"][2]["number"]]
    assert panel.get("/servers", "ann", params={"status": "overdue", "location": "US"}).json()["total"] == 0
    assert panel.get("/servers", "ann", params={"status": "active", "location": "NL"}).json()["total"] == 2
    assert panel.get("/servers", "bob", params={"status": "overdue"}).json()["total"] == 0


@pytest.mark.parametrize("query, expected", [
    ("web-1", [0]), ("DB-PRIM", [3]), ("198.51.100.11", [1]), ("2001:db8::11", [1]), ("192.0.2", [3, 4]),
])
def test_search_by_tag_ip_or_number_never_reaches_other_customers(panel, fleet, query, expected):
    answer = panel.get("/servers", "ann", params={"q": query})
    assert numbers(answer) == sorted(fleet["ann"][i]["number"] for i in expected)


def test_search_by_number(panel, fleet):
    number = fleet["ann"][4]["number"]
    assert numbers(panel.get("/servers", "ann", params={"q": number.lower()})) == [number]
    assert panel.get("/servers", "bob", params={"q": number}).json()["total"] == 0


def test_pages_and_sorting(panel, fleet):
    first = panel.get("/servers", "ann", params={"per_page": 2, "sort": "number", "order": "desc"}).json()
    second = panel.get("/servers", "ann", params={"per_page": 2, "page": 2, "sort": "number", "order": "desc"}).json()
    everything = sorted((s["number"] for s in fleet["ann"]), reverse=True)
    assert [i["number"] for i in first["items"] + second["items"]] == everything[:4]
    assert first["total"] == 5
    # the same pages by cursor (keyset: as fast at page 2,000 as at page 2)
    walked, cursor = [], None
    while True:
        params = {"per_page": 2, "sort": "number", "order": "desc", **({"cursor": cursor} if cursor else {})}
        answer = panel.get("/servers", "ann", params=params).json()
        walked += [item["number"] for item in answer["items"]]
        cursor = answer["next_cursor"]
        if cursor is None:
            break
    assert walked == everything
    foreign = panel.get("/servers", "ann", params={"per_page": 2, "sort": "tag", "cursor": first["next_cursor"]})
    assert foreign.status_code == 400 and "cursor" in foreign.json()["error"]["fields"]


@pytest.mark.parametrize("params, field", [
    ({"status": "broken"}, "status"), ({"per_page": 501}, "per_page"), ({"page": 0}, "page"),
    ({"location": "Netherlands"}, "location"), ({"sort": "price"}, "sort"), ({"page": "x"}, "page"),
])
def test_bad_list_parameters_are_a_400_naming_them(panel, params, field):
    answer = panel.get("/servers", "ann", params=params)
    assert answer.status_code == 400 and field in answer.json()["error"]["fields"]


def test_the_list_needs_a_session(panel):
    assert requests.get(f"{panel.base_url}/api/v1/servers", timeout=10).status_code == 401


# -- R-SRV-4: export ---------------------------------------------------------------------

def test_csv_export_has_as_many_rows_as_the_list_for_the_same_filters(panel, fleet):
    for params in ({}, {"location": "NL"}, {"q": "web"}):
        total = panel.get("/servers", "ann", params=params).json()["total"]
        answer = panel.get("/servers/export", "ann", params=dict(params, format="csv"))
        assert answer.status_code == 200
        assert answer.headers["Content-Disposition"] == 'attachment; filename="servers.csv"'
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert len(rows) == total
    assert {row["number"] for row in rows} == {fleet["ann"][0]["number"]}


def test_json_export(panel, fleet):
    answer = panel.get("/servers/export", "bob", params={"format": "json"})
    assert answer.headers["Content-Type"].startswith("application/json")
    assert sorted(row["number"] for row in answer.json()) == sorted(s["number"] for s in fleet["bob"])


# -- R-SRV-6: control panel --------------------------------------------------------------

def test_server_details_with_live_power_and_hardware(panel, fleet):
    server = fleet["ann"][0]
    detail = panel.get(f"/servers/{server['id']}", "ann").json()
    assert detail["number"] == server["number"]
    assert detail["hardware"]["ram_gb"] == 128
    assert detail["ips"] == ["198.51.100.10"]
    assert detail["os"] == {"id": "ubuntu-24.04", "name": "Ubuntu 24.04 LTS"}
    assert detail["power_source"] == "bmc" and detail["power"] in ("on", "off")
    assert detail["recent_operations"] == []


def test_a_silent_bmc_shows_the_last_known_power_instead_of_failing_the_page(panel, start_service):
    """Its requests time out only after BMC_TIMEOUT_SECONDS each (5 here; 10 deployed): the
    page must not wait for them past the gateway's RPC limit (5 s) and answer 503."""
    panel.inventory_container.stop()
    start_service(InventoryService, **dict(panel.inventory_config, BMC_TIMEOUT_SECONDS=5))
    server = panel.provision("ann", silent=True)
    answer = panel.get(f"/servers/{server['id']}", "ann")
    assert answer.status_code == 200
    assert answer.json()["power_source"] == "last_known" and answer.json()["power"] == "on"


def test_another_customers_server_is_not_found(panel, fleet):
    theirs = fleet["bob"][0]["id"]
    for answer in (panel.get(f"/servers/{theirs}", "ann"), panel.patch(f"/servers/{theirs}", "ann", {"tag": "x"}),
                   panel.post(f"/servers/{theirs}/actions", "ann", {"action": "reboot"})):
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    assert panel.get("/servers/does-not-exist", "ann").status_code == 404


def test_tag_editing(panel, fleet):
    server = fleet["ann"][1]
    answer = panel.patch(f"/servers/{server['id']}", "ann", {"tag": "cache-7"})
    assert answer.status_code == 200 and answer.json()["tag"] == "cache-7"
    assert numbers(panel.get("/servers", "ann", params={"q": "cache-7"})) == [server["number"]]
    assert panel.patch(f"/servers/{server['id']}", "ann", {"tag": "x" * 65}).status_code == 400
    assert panel.patch(f"/servers/{server['id']}", "ann", {"tag": None}).json()["tag"] is None


# -- R-ASYNC-1/2: actions are operations -------------------------------------------------

def test_reboot_is_accepted_at_once_and_ends_succeeded(panel, fleet):
    server = fleet["ann"][0]
    answer = panel.post(f"/servers/{server['id']}/actions", "ann", {"action": "reboot"})
    assert answer.status_code == 202
    operation = answer.json()["operation"]
    assert operation["status"] == "pending" and operation["kind"] == "server.reboot"
    assert operation["title"] == f"Reboot {server['number']}"
    final = panel.wait_operation("ann", operation["id"])
    assert final["status"] == "succeeded" and final["detail"] == f"{server['number']} has rebooted."
    assert panel.get(f"/servers/{server['id']}", "ann").json()["recent_operations"][0]["id"] == operation["id"]


def test_power_off_then_on_changes_the_bmc_power_state(panel, fleet):
    server = fleet["ann"][3]
    off = panel.post(f"/servers/{server['id']}/actions", "ann", {"action": "power_off"}).json()["operation"]
    assert panel.wait_operation("ann", off["id"])["status"] == "succeeded"
    detail = panel.get(f"/servers/{server['id']}", "ann").json()
    assert detail["power"] == "off" and detail["power_source"] == "bmc"
    assert panel.get("/servers", "ann", params={"q": server["number"]}).json()["items"][0]["power"] == "off"
    on = panel.post(f"/servers/{server['id']}/actions", "ann", {"action": "power_on"}).json()["operation"]
    assert panel.wait_operation("ann", on["id"])["status"] == "succeeded"
    assert panel.get(f"/servers/{server['id']}", "ann").json()["power"] == "on"


def test_reinstall_needs_a_published_os_and_changes_the_os(panel, fleet):
    server = fleet["ann"][1]
    missing = panel.post(f"/servers/{server['id']}/actions", "ann", {"action": "reinstall"})
    assert missing.status_code == 400 and "os" in missing.json()["error"]["fields"]
    unknown = panel.post(f"/servers/{server['id']}/actions", "ann", {"action": "reinstall", "os": "beos-5"})
    assert unknown.status_code == 400 and "os" in unknown.json()["error"]["fields"]
    images = [i["id"] for i in panel.get("/os-images", "ann").json()["items"]]
    assert "debian-12" in images
    accepted = panel.post(f"/servers/{server['id']}/actions", "ann", {"action": "reinstall", "os": "debian-12"})
    assert accepted.status_code == 202
    final = panel.wait_operation("ann", accepted.json()["operation"]["id"])
    assert final["status"] == "succeeded", final
    assert panel.get(f"/servers/{server['id']}", "ann").json()["os"]["id"] == "debian-12"


def test_one_destructive_operation_at_a_time_and_a_silent_bmc_fails_the_operation(panel):
    server = panel.provision("ann", silent=True)
    first = panel.post(f"/servers/{server['id']}/actions", "ann", {"action": "reboot"})
    assert first.status_code == 202
    second = panel.post(f"/servers/{server['id']}/actions", "ann", {"action": "power_off"})
    assert second.status_code == 409 and second.json()["error"]["code"] == "conflict"
    final = panel.wait_operation("ann", first.json()["operation"]["id"])
    assert final["status"] == "failed"
    assert "did not answer" in final["detail"]
    # The server is free again once the operation ended.
    assert panel.post(f"/servers/{server['id']}/actions", "ann", {"action": "power_on"}).status_code == 202


def test_an_action_sent_again_with_its_idempotency_key_reboots_once(panel, fleet):
    """The retry of a reboot whose 202 was lost answers the same operation, even when the
    gateway lost what it answered (it died after inventory accepted the work)."""
    server = fleet["ann"][0]

    def reboot():
        return requests.post(f"{panel.base_url}/api/v1/servers/{server['id']}/actions", json={"action": "reboot"},
                             timeout=15, headers={"Authorization": f"Bearer {panel.tokens['ann']}",
                                                  "Idempotency-Key": "reboot-web-1-0001"})

    first = reboot()
    assert first.status_code == 202
    replayed = reboot()
    assert replayed.json() == first.json() and replayed.headers["Idempotent-Replayed"] == "true"
    with panel.sessions.engine.begin() as conn:  # what a gateway killed mid-request leaves behind
        conn.execute(idempotent_requests.delete())
    after_crash = reboot()
    assert after_crash.status_code == 202
    assert after_crash.json()["operation"]["id"] == first.json()["operation"]["id"]
    panel.wait_operation("ann", first.json()["operation"]["id"])
    reboots = [o for o in panel.get(f"/servers/{server['id']}", "ann").json()["recent_operations"]
               if o["kind"] == "server.reboot"]
    assert [o["id"] for o in reboots] == [first.json()["operation"]["id"]]


def test_another_customers_operation_is_not_found(panel, fleet):
    operation = panel.post(f"/servers/{fleet['ann'][0]['id']}/actions", "ann", {"action": "reboot"}).json()["operation"]
    assert panel.get(f"/operations/{operation['id']}", "bob").status_code == 404
    panel.wait_operation("ann", operation["id"])


def test_killing_inventory_mid_operation_leaves_no_operation_running(panel, start_service):
    server = panel.provision("ann", silent=True)
    operation = panel.post(f"/servers/{server['id']}/actions", "ann", {"action": "reboot"}).json()["operation"]
    wait_for(lambda: panel.get(f"/operations/{operation['id']}", "ann").json()["status"] == "running",
             message="operation running")
    panel.inventory_container.kill()

    restarted = start_service(InventoryService, **panel.inventory_config)

    final = panel.wait_operation("ann", operation["id"])
    assert final["status"] == "failed"
    events = store_of(restarted).load_stream(f"operation-{operation['id']}")
    assert [e.type for e in events] == ["operation_requested", "operation_started", "operation_failed"]


def test_server_numbers_count_past_99999_in_numeric_order(panel):
    """Numbers are integers in text: SRV-100000 follows SRV-99999 in lists and exports."""
    store = store_of(panel.inventory_container)
    from services.inventory.domain import Server

    with store.transaction() as tx:
        tx.append("server-old", 0, Server.provision(
            "old", user_id="ann", number="SRV-99999", location="NL", plan="AX41", hardware={}, ips=["192.0.2.99"],
            os="ubuntu-24.04", bmc={"endpoint": panel.bmc.endpoint, "system_id": "x"}, paid_until="2026-12-31",
            price_month="49.00"))
    newer = [panel.provision("ann")["number"] for _ in range(2)]
    assert newer == ["SRV-100000", "SRV-100001"]
    listed = [i["number"] for i in panel.get("/servers", "ann").json()["items"]]
    assert listed == ["SRV-99999", "SRV-100000", "SRV-100001"]
    exported = [row["number"] for row in csv.DictReader(io.StringIO(panel.get("/servers/export", "ann").text))]
    assert exported == listed
