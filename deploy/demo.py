"""Demo data for the local stack, created through the services' own RPCs (so it goes through
the same validation and events as real data). Safe to run again: what exists is kept.

    python -m deploy.demo            (AMQP_URI from the environment)

The customers are listed in ``var/stack.json`` (API.md "The development stack"): the first
has two-factor authentication on (codes arrive in the SMS stand-in's inbox); the second is
another customer, for isolation checks. Their passwords are for the local stack only.
"""

import eventlet

eventlet.monkey_patch()  # noqa: E402 — nameko's standalone proxy needs it

import json  # noqa: E402
import os  # noqa: E402
import uuid  # noqa: E402

from nameko.standalone.rpc import ClusterRpcProxy  # noqa: E402

from common import rpc_errors  # noqa: E402,F401 - typed errors from the standalone proxies
from common.errors import ValidationFailed  # noqa: E402

USERS = [
    {"username": "demo", "password": "demo-password-1", "two_factor": True,
     "email": "demo@panel.local", "phone": "+31612345678"},
    {"username": "other", "password": "other-password-1", "two_factor": False,
     "email": "other@panel.local", "phone": "+14155550123"},
]


HARDWARE = {
    "AX41": {"cpu": "AMD Ryzen 5 3600", "cpu_count": 1, "ram_gb": 64, "disks": ["2x 512 GB NVMe"], "gpu": None},
    "AX102": {"cpu": "AMD Ryzen 9 7950X3D", "cpu_count": 1, "ram_gb": 128, "disks": ["2x 1.92 TB NVMe"], "gpu": None},
    "EX130": {"cpu": "Intel Xeon Gold 5412U", "cpu_count": 1, "ram_gb": 256, "disks": ["2x 1.92 TB NVMe"], "gpu": None},
    "GEX130": {"cpu": "Intel Xeon Gold 5412U", "cpu_count": 1, "ram_gb": 128, "disks": ["2x 1.92 TB NVMe"],
               "gpu": "NVIDIA RTX 6000 Ada"},
}
PRICES = {"AX41": "49.00", "AX102": "119.00", "EX130": "199.00", "GEX130": "838.00"}

# (owner, location, plan, addresses, tag, overdue). The overdue one's paid period has
# ended: billing's renewal run invoices it, and as its month costs more than the demo
# balance (DEMO_BALANCE), the invoice stays open and the server overdue — so the Overdue
# filter and an open invoice are there to see (a top-up of the difference pays it).
SERVERS = [
    ("demo", "NL", "AX41", ["185.12.64.10", "2a01:4f8::10"], "web-1", False),
    ("demo", "NL", "AX102", ["185.12.64.11"], "db-primary", False),
    ("demo", "US", "EX130", ["5.161.20.30"], "edge-us", False),
    ("demo", "US", "GEX130", ["5.161.20.31"], "ml-gpu", True),
    ("other", "NL", "AX41", ["185.12.64.90"], "other-web", False),
    ("other", "US", "AX41", ["5.161.20.90"], None, False),
]


def bmc_systems():
    """One Redfish system per demo server, with stable UUIDs (restarts keep the bindings)."""
    return [{"uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"hostpanel-demo-{n}")), "name": f"demo-server-{n}",
             "power_state": "On"} for n in range(1, len(SERVERS) + 1)]


def seed_servers(cluster, bmc_endpoint):
    user_ids = {name: cluster.auth.user_id_of(name) for name in {s[0] for s in SERVERS}}
    created = 0
    for (owner, location, plan, ips, tag, overdue), system in zip(SERVERS, bmc_systems()):
        with ClusterRpcProxy(CONFIG, context_data={"user_id": user_ids[owner]}, timeout=30) as as_owner:
            if as_owner.inventory.list_servers(q=ips[0])["total"]:
                continue  # seeded before
        server = cluster.inventory.provision_server(
            user_ids[owner], location, f"Dedicated {plan}", HARDWARE[plan], ips, "ubuntu-24.04",
            {"endpoint": bmc_endpoint, "system_id": system["uuid"]}, "2026-11-01" if overdue else "2026-12-31",
            PRICES[plan], tag)
        if overdue:
            cluster.inventory.set_overdue(server["id"], True)
        created += 1
    return created


DEMO_BALANCE = "500.00"  # the first customer's, so the catalogs can be tried at once


def seed_balance(user_id, payments_url):
    """Top the first customer's balance up through the real path: a Stripe top-up, paid in
    the payments sandbox, credited when its signed notification reaches the gateway."""
    import requests

    with ClusterRpcProxy(CONFIG, context_data={"user_id": user_id}, timeout=30) as as_customer:
        if float(as_customer.billing.get_account()["balance"]) > 0:
            return False
        topup = as_customer.billing.create_topup(DEMO_BALANCE, "stripe", idempotency_key="demo-balance")
        if topup["status"] == "pending":
            requests.post(f"{payments_url}/payments/{topup['provider_payment_id']}/complete",
                          json={"outcome": "succeeded"}, timeout=10).raise_for_status()
    return True


def issue_overdue_invoice(cluster, user_id, timeout=30.0):
    """Run billing's renewals now (its timer would within a minute) until the overdue demo
    server's invoice is there, so the panel shows it from the first screen on."""
    import time

    deadline = time.monotonic() + timeout
    with ClusterRpcProxy(CONFIG, context_data={"user_id": user_id}, timeout=30) as as_customer:
        while time.monotonic() < deadline:
            cluster.billing.run_billing()  # billing learns of new servers by event: ask until it has
            if as_customer.billing.list_invoices()["total"]:
                return True
            time.sleep(0.5)
    return False


def seed_users(cluster):
    created = []
    for user in USERS:
        try:
            cluster.auth.register_user(user["username"], user["password"], user["email"],
                                       user["phone"], user["two_factor"])
            created.append(user["username"])
        except ValidationFailed as error:
            if "username" not in error.fields:
                raise
    return created


CONFIG = {"AMQP_URI": os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")}


def main():
    bmc_endpoint = os.environ.get("DEMO_BMC_ENDPOINT", "http://127.0.0.1:9205")
    with ClusterRpcProxy(CONFIG, timeout=30) as cluster:
        created = seed_users(cluster)
        servers = seed_servers(cluster, bmc_endpoint)
        payments_url = os.environ.get("DEMO_PAYMENTS_URL")
        if payments_url:
            seed_balance(cluster.auth.user_id_of(USERS[0]["username"]), payments_url)
        if any(server[5] for server in SERVERS):
            issue_overdue_invoice(cluster, cluster.auth.user_id_of(USERS[0]["username"]))
    names = ", ".join(u["username"] for u in USERS)
    print(f"[stack] demo customers: {names} ({len(created)} created now); "
          f"{len(SERVERS)} demo servers ({servers} created now)")


def catalog_systems(catalog_file):
    """One Redfish system per catalog unit (powered off until an order delivers it)."""
    from services.orders.catalog import load_catalog

    return [{"uuid": unit["system_id"], "name": unit["unit_id"], "power_state": "Off"}
            for offer in load_catalog(catalog_file).values() for unit in offer["units"]]


def write_bmc_systems(path, catalog_file=None):
    """The emulator's systems file: the demo servers, and the catalog's units."""
    systems = bmc_systems() + (catalog_systems(catalog_file) if catalog_file else [])
    with open(path, "w") as handle:
        json.dump(systems, handle, indent=2)


if __name__ == "__main__":
    main()
