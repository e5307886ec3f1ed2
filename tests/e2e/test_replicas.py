"""The stack as operations would run it (issue 21): every service on a PostgreSQL database
of its own, two processes of every service and two gateways behind one address (the
round-robin balancer ``PANEL_REPLICAS=2`` starts). Live notifications reach a customer
through either gateway; then, while customers keep working, one replica of every service
and one gateway is killed (``bench/faults.py``): nothing accepted is lost, nothing is done
twice, no operation is stuck, the action log is complete."""

import uuid

import pytest
import requests
import sqlalchemy as sa

from bench.faults import KILLED, log_in, print_report, run_fault_loop
from common.db import create_engine
from tests.conftest import PG_ADMIN_URL, postgres_available
from tests.stack import running_stack
from tests.support import StreamReader, wait_for


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if not postgres_available():
        pytest.skip("no PostgreSQL server answers at 127.0.0.1:5432")
    prefix = f"panel_replicas_{uuid.uuid4().hex[:8]}"
    template = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{prefix}_{{service}}"
    try:
        with running_stack(tmp_path_factory.mktemp("var"), vhost_prefix="panel-replicas", BMC_POWER_DELAY="1",
                           PANEL_REPLICAS="2", PANEL_DATABASE_URL_TEMPLATE=template) as info:
            yield info
    finally:
        drop_databases(prefix)


def drop_databases(prefix):
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        names = conn.execute(sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                             {"p": f"{prefix}_%"}).scalars().all()
        for name in names:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def test_the_stack_runs_two_of_everything_on_postgresql(stack):
    assert stack["replicas"] == 2 and len(stack["gateways"]) == 2
    assert {name for name in stack["processes"] if name.endswith("-2")} == {f"{name}-2" for name in KILLED}
    assert all(url.startswith("postgresql") for url in stack["databases"].values())
    for gateway in stack["gateways"]:
        assert requests.get(f"{gateway}/readyz", timeout=10).status_code == 200


def test_live_notifications_arrive_through_either_gateway(stack):
    customer = log_in(stack, stack["users"][1])
    token = customer.bearer["Authorization"].split(" ", 1)[1]
    readers = [StreamReader(f"{gateway}/api/v1/notifications/stream", token) for gateway in stack["gateways"]]
    try:
        answer = requests.post(f"{customer.api}/servers/{customer.servers[0]}/actions", json={"action": "reboot"},
                               headers=customer.bearer, timeout=15)
        assert answer.status_code == 202, answer.text
        operation_id = answer.json()["operation"]["id"]
        for reader in readers:
            wait_for(lambda: [e for e in reader.events if e.get("type") == "notification"
                              and e["data"]["operation_id"] == operation_id and e["data"]["level"] == "success"],
                     timeout=60, message="the reboot's result on this gateway's stream")
    finally:
        for reader in readers:
            reader.close()


@pytest.mark.timeout(1200)
def test_killing_one_replica_of_everything_loses_nothing(stack, capsys):
    result = run_fault_loop(stack, seconds_per_fault=3.0, broker=False)
    with capsys.disabled():
        print()
        print_report(result)
    assert result["kills"] == len(KILLED) and result["accepted"] > 20
    assert result["lost"] == [] and result["stuck"] == [] and result["duplicated"] == []
    assert result["server_errors"] == {} and result["credit_problems"] == [] and result["unrecovered"] == []
