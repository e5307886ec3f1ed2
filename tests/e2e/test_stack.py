"""The whole stack, booted through the same code as ``make run`` (``python -m deploy.devstack``)
on a RabbitMQ vhost and a var/ folder of its own, exercised over HTTP like a front-end and
an operator would."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import eventlet
import pytest
import requests

from common.config import REPO_ROOT, SERVICES
from deploy.devstack import free_port_block
from tests.stack import running_stack
from tests.support import http_ok, wait_for


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("var"), vhost_prefix="panel-e2e") as info:
        yield info


def test_readyz_is_200_with_every_service_answering(stack):
    answer = requests.get(f"{stack['gateway']}/readyz", timeout=10)
    assert answer.status_code == 200
    assert answer.json()["services"] == {service: "ok" for service in SERVICES}


def test_stack_json_describes_what_runs(stack):
    assert set(stack["metrics"]) == set(SERVICES) | {"gateway"}
    assert set(stack["processes"]) == set(SERVICES) | {"gateway", "sms", "voice", "mail", "bmc", "images", "payments",
                                                       "s3-nl", "s3-us"}
    assert set(stack["s3"]) == {"NL", "US"}
    first, second = stack["users"]
    assert first["two_factor"] is True and second["two_factor"] is False
    for inbox in ("sms_inbox", "voice_inbox", "mail_inbox"):
        assert requests.get(f"{stack[inbox]}/messages", timeout=5).status_code == 200


def test_api_answers_json_with_request_ids(stack):
    health = requests.get(f"{stack['gateway']}/healthz", headers={"X-Request-ID": "e2e-1"})
    assert health.json() == {"status": "ok"} and health.headers["X-Request-ID"] == "e2e-1"
    missing = requests.get(f"{stack['gateway']}/api/v1/servers/42/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    spec = requests.get(f"{stack['gateway']}/api/v1/openapi.json").json()
    assert "/readyz" in spec["paths"]


def test_every_process_serves_prometheus_metrics(stack):
    requests.get(f"{stack['gateway']}/readyz", timeout=10)
    for name, url in stack["metrics"].items():
        text = requests.get(url, timeout=5).text
        assert f'service="{name}"' in text, name
        if name != "gateway":
            assert f'panel_entrypoint_calls_total{{entrypoint="health",kind="rpc",outcome="ok",service="{name}"}}' in text
            assert f'panel_outbox_backlog_events{{service="{name}"}} 0.0' in text
            assert f'panel_operations{{service="{name}",status="running"}} 0.0' in text


def test_service_logs_are_json_lines(stack):
    log_file = stack["var_dir"] / "log" / "auth.log"
    lines = [line for line in log_file.read_text().splitlines() if line.startswith("{")]
    assert lines
    entries = [json.loads(line) for line in lines]
    assert {entry["service"] for entry in entries} == {"auth"}


def test_rebuild_projections_on_the_running_stack_equals_the_live_read_models(stack):
    env = dict(stack["env"], DATABASE_URL=stack["databases"]["inventory"])
    result = subprocess.run([sys.executable, "-m", "deploy.cli", "rebuild-projections", "inventory", "--check"],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "equal the live ones" in result.stdout


def test_the_first_demo_customer_logs_in_with_an_sms_code(stack):
    """R-AUTH-1/2/6/7 on the running stack, as a front-end would."""
    api = f"{stack['gateway']}/api/v1"
    customer = stack["users"][0]
    challenge = requests.post(f"{api}/auth/login", json={"username": customer["username"],
                                                          "password": customer["password"]}, timeout=10).json()
    assert challenge["status"] == "2fa_required"
    sms = wait_for(lambda: requests.get(f"{stack['sms_inbox']}/messages", timeout=5).json(), message="the SMS")
    code = re.search(r"\b(\d{6})\b", sms[-1]["text"]).group(1)
    session = requests.post(f"{api}/auth/2fa/verify", json={"challenge_id": challenge["challenge_id"], "code": code},
                            timeout=10)
    assert session.status_code == 200
    token = session.json()["token"]
    assert requests.get(f"{api}/auth/session", cookies={"session": token}, timeout=10).json()["user"]["username"] == customer["username"]
    assert requests.post(f"{api}/auth/logout", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 204
    assert requests.get(f"{api}/auth/session", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 401


def demo_session(stack):
    """A session of the first demo customer (through its SMS code)."""
    api = f"{stack['gateway']}/api/v1"
    customer = stack["users"][0]
    seen = len(requests.get(f"{stack['sms_inbox']}/messages", timeout=5).json())
    challenge = requests.post(f"{api}/auth/login", json={"username": customer["username"],
                                                          "password": customer["password"]}, timeout=10).json()
    sms = wait_for(lambda: requests.get(f"{stack['sms_inbox']}/messages", timeout=5).json()[seen:], message="the SMS")
    code = re.search(r"\b(\d{6})\b", sms[-1]["text"]).group(1)
    return requests.post(f"{api}/auth/2fa/verify", json={"challenge_id": challenge["challenge_id"], "code": code},
                         timeout=10).json()["token"]


def test_the_demo_keeps_an_overdue_server_with_its_open_invoice(stack):
    """R-SRV-3 can be seen on `make run`: the renewal of the demo's overdue server costs
    more than the demo balance, so its invoice stays unpaid and the server overdue."""
    api, headers = f"{stack['gateway']}/api/v1", {"Authorization": f"Bearer {demo_session(stack)}"}

    def unpaid():
        invoices = requests.get(f"{api}/billing/invoices", headers=headers, timeout=10).json()["items"]
        return [invoice for invoice in invoices if invoice["status"] in ("open", "overdue")]

    invoice = wait_for(unpaid, timeout=60, interval=0.5, message="the renewal invoice")[0]
    overdue = requests.get(f"{api}/servers", params={"status": "overdue"}, headers=headers, timeout=10).json()
    assert [server["id"] for server in overdue["items"]] == [invoice["server_id"]]
    account = requests.get(f"{api}/billing/account", headers=headers, timeout=10).json()
    assert account["overdue"] is True and account["unpaid_invoices"] >= 1


def test_throttling_holds_across_two_gateway_processes(stack):
    """A second gateway process (same config, own port) shares sessions and throttles."""
    port = free_port_block(1)
    env = dict(stack["env"], GATEWAY_ADDRESS=f"127.0.0.1:{port}", METRICS_PORT="off",
               DATABASE_URL=stack["databases"]["gateway"], SESSION_COOKIE_SECURE="false",
               PYTHONWARNINGS="ignore::DeprecationWarning")
    log = open(stack["var_dir"] / "second-gateway.log", "wb")
    second = subprocess.Popen([str(Path(sys.executable).with_name("nameko")), "run", "--config",
                               str(REPO_ROOT / "deploy/config/gateway.yaml"), "gateway.service:GatewayService"],
                              cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        urls = [f"{stack['gateway']}/api/v1", f"http://127.0.0.1:{port}/api/v1"]
        def up():
            assert second.poll() is None, (stack["var_dir"] / "second-gateway.log").read_text()
            return http_ok(f"http://127.0.0.1:{port}/healthz")

        wait_for(up, timeout=30, message="second gateway up", interval=0.2)
        customer = stack["users"][1]
        statuses = [requests.post(f"{urls[n % 2]}/auth/login", timeout=10, json={
            "username": customer["username"], "password": "wrong-password"}).status_code for n in range(5)]
        assert statuses == [401, 401, 401, 401, 429]
        blocked = requests.post(f"{urls[1]}/auth/login", timeout=10,
                                json={"username": customer["username"], "password": customer["password"]})
        assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
    finally:
        second.terminate()
        second.wait(30)
        log.close()


def test_a_server_reboot_reaches_the_customers_live_action_log(stack):
    """R-SRV-6, R-ASYNC-1/2, R-LOG-1/2: through every process of the stack."""
    api = f"{stack['gateway']}/api/v1"
    customer = stack["users"][1]
    token = requests.post(f"{api}/auth/login", json={"username": customer["username"],
                                                     "password": customer["password"]}, timeout=10).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    servers = requests.get(f"{api}/servers", headers=bearer, timeout=10).json()
    assert servers["total"] == 2 and {s["location"] for s in servers["items"]} == {"NL", "US"}
    frames = []
    stream = requests.get(f"{api}/notifications/stream", headers=bearer, stream=True, timeout=60)

    def read():
        for line in stream.iter_lines(decode_unicode=True):
            if line.startswith("data: "):
                frames.append(json.loads(line[6:]))

    reader = eventlet.spawn(read)
    try:
        accepted = requests.post(f"{api}/servers/{servers['items'][0]['id']}/actions", json={"action": "reboot"},
                                 headers=bearer, timeout=10)
        assert accepted.status_code == 202
        operation_id = accepted.json()["operation"]["id"]
        wait_for(lambda: len([f for f in frames if f["operation_id"] == operation_id]) == 2, timeout=60,
                 message="started and result on the stream")
        levels = [f["level"] for f in frames if f["operation_id"] == operation_id]
        assert levels == ["info", "success"]
        final = requests.get(f"{api}/operations/{operation_id}", headers=bearer, timeout=10).json()
        assert final["status"] == "succeeded"
        log = requests.get(f"{api}/notifications", headers=bearer, timeout=10).json()
        assert [i["title"] for i in log["items"] if i["operation_id"] == operation_id] == [final["title"]] * 2

        server = servers["items"][0]
        assert requests.patch(f"{api}/servers/{server['id']}", json={"tag": "e2e-web"}, headers=bearer,
                              timeout=10).status_code == 200
        tagged = wait_for(lambda: [f for f in frames if f["title"] == f"Server {server['number']} tag changed"],
                          timeout=60, message="the tag change on the stream")
        assert tagged[0]["body"] == "Tagged “e2e-web”." and tagged[0]["operation_id"] is None
    finally:
        reader.kill()
        stream.close()


def test_a_top_up_paid_at_the_sandbox_is_credited_and_logged(stack):
    """R-BILL-2/3 through the stack: the sandbox sends the signed webhook to the gateway."""
    api = f"{stack['gateway']}/api/v1"
    customer = stack["users"][1]
    token = requests.post(f"{api}/auth/login", json={"username": customer["username"],
                                                     "password": customer["password"]}, timeout=10).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    before = requests.get(f"{api}/billing/account", headers=bearer, timeout=10).json()["balance"]
    topup = requests.post(f"{api}/billing/topups", json={"amount": "75.00", "method": "revolut"}, headers=bearer,
                          timeout=15).json()
    assert topup["status"] == "pending" and topup["redirect_url"]
    requests.post(f"{stack['payments_sandbox']}/payments/{topup['provider_payment_id']}/complete",
                  json={"outcome": "succeeded"}, timeout=10).raise_for_status()
    wait_for(lambda: requests.get(f"{api}/billing/topups/{topup['id']}", headers=bearer,
                                  timeout=10).json()["status"] == "succeeded", timeout=30, message="credited")
    after = requests.get(f"{api}/billing/account", headers=bearer, timeout=10).json()["balance"]
    assert float(after) == float(before) + 75
    wait_for(lambda: [i for i in requests.get(f"{api}/notifications", headers=bearer, timeout=10).json()["items"]
                      if i["operation_id"] == topup["operation_id"] and i["level"] == "success"],
             timeout=30, message="the top-up in the action log")


def test_instant_and_stock_orders_are_delivered_on_the_stack(stack):
    """R-INST-1, R-STOCK-1 through every process: the demo clock delivers a stock order's
    business day in seconds (STOCK_DELIVERY_SPEEDUP)."""
    api = f"{stack['gateway']}/api/v1"
    customer = stack["users"][1]
    token = requests.post(f"{api}/auth/login", json={"username": customer["username"],
                                                     "password": customer["password"]}, timeout=10).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    topup = requests.post(f"{api}/billing/topups", json={"amount": "50.00", "method": "stripe"}, headers=bearer,
                          timeout=15).json()
    requests.post(f"{stack['payments_sandbox']}/payments/{topup['provider_payment_id']}/complete",
                  json={"outcome": "succeeded"}, timeout=10).raise_for_status()
    wait_for(lambda: requests.get(f"{api}/billing/topups/{topup['id']}", headers=bearer,
                                  timeout=10).json()["status"] == "succeeded", timeout=30, message="credited")
    servers_before = requests.get(f"{api}/servers", headers=bearer, timeout=10).json()["total"]
    vps = requests.get(f"{api}/catalog/instant", params={"category": "vps", "location": "NL"}, timeout=10).json()
    stock = requests.get(f"{api}/catalog/stock", params={"category": "intel", "location": "NL"}, timeout=10).json()
    cheapest = [min(catalog["items"], key=lambda o: float(o["price_month"])) for catalog in (vps, stock)]
    operations = []
    for offer in cheapest:
        accepted = requests.post(f"{api}/orders", json={"offer_id": offer["id"], "location": "NL",
                                                        "os": "debian-12"}, headers=bearer, timeout=15)
        assert accepted.status_code == 202, accepted.text
        operations.append(accepted.json()["operation"]["id"])
    for operation_id in operations:
        final = wait_for(lambda: (lambda o: o if o["status"] in ("succeeded", "failed") else None)(
            requests.get(f"{api}/operations/{operation_id}", headers=bearer, timeout=10).json()),
            timeout=120, message=f"order {operation_id} delivered")
        assert final["status"] == "succeeded", final
    servers = requests.get(f"{api}/servers", headers=bearer, timeout=10).json()
    assert servers["total"] == servers_before + 2
    statement = requests.get(f"{api}/billing/transactions", headers=bearer, timeout=10).json()["items"]
    assert sorted(t["amount"] for t in statement if t["reason"] == "order") == sorted(
        o["price_month"] for o in cheapest)


def test_an_s3_storage_on_the_stack_stores_objects_with_its_own_credentials(stack):
    """R-S3-1…5 through every process: the storage service, the S3 stand-in of the location
    (IAM enforced) and a real S3 client with the credentials the API hands out."""
    import boto3
    from botocore.config import Config

    api = f"{stack['gateway']}/api/v1"
    customer = stack["users"][1]
    token = requests.post(f"{api}/auth/login", json={"username": customer["username"],
                                                     "password": customer["password"]}, timeout=10).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    created = requests.post(f"{api}/storage/s3", json={"name": "e2e", "limit_gb": 1, "location": "US"},
                            headers=bearer, timeout=15)
    assert created.status_code == 201, created.text
    storage = created.json()
    bucket = f"e2e-{uuid.uuid4().hex[:10]}"
    accepted = requests.post(f"{api}/storage/s3/{storage['id']}/buckets", json={"name": bucket}, headers=bearer,
                             timeout=15)
    assert accepted.status_code == 202, accepted.text
    operation_id = accepted.json()["operation"]["id"]
    wait_for(lambda: requests.get(f"{api}/operations/{operation_id}", headers=bearer,
                                  timeout=10).json()["status"] == "succeeded", timeout=60, message="bucket created")
    credentials = requests.get(f"{api}/storage/s3/{storage['id']}/credentials", headers=bearer, timeout=10).json()
    assert credentials["endpoints"] == [stack["s3"]["US"]]
    client = boto3.client("s3", endpoint_url=credentials["endpoints"][0], region_name=credentials["region"],
                          aws_access_key_id=credentials["access_key"], aws_secret_access_key=credentials["secret_key"],
                          config=Config(s3={"addressing_style": "path"}))
    client.put_object(Bucket=bucket, Key="hello.txt", Body=b"hello from the stack")
    assert client.get_object(Bucket=bucket, Key="hello.txt")["Body"].read() == b"hello from the stack"


def test_a_support_request_with_a_file_is_answered_by_staff_on_the_stack(stack):
    """R-SUP-1…4 through every process: multipart through the gateway, the file stored where
    the stack keeps attachments, a staff reply from the staff tool, the customer's log."""
    api = f"{stack['gateway']}/api/v1"
    customer = stack["users"][1]
    token = requests.post(f"{api}/auth/login", json={"username": customer["username"],
                                                     "password": customer["password"]}, timeout=10).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    log_file = b"kernel: eth0 link down\n" * 200
    opened = requests.post(f"{api}/support/tickets", headers=bearer, timeout=30,
                           data={"subject": "Network drops", "description": "Since this morning."},
                           files=[("attachments", ("syslog.txt", log_file, "text/plain"))])
    assert opened.status_code == 201, opened.text
    ticket = requests.get(f"{api}/support/tickets/{opened.json()['id']}", headers=bearer, timeout=10).json()
    [attachment] = ticket["messages"][0]["attachments"]
    download = requests.get(f"{api}/support/tickets/{ticket['id']}/attachments/{attachment['id']}", headers=bearer,
                            timeout=10)
    assert download.content == log_file
    assert any(path.is_file() for path in (stack["var_dir"] / "support-attachments").rglob("*"))
    staff = subprocess.run([sys.executable, "-m", "services.support.staff", "reply", ticket["id"], "--as", "Alice",
                            "--body", "We replaced the cable."], cwd=REPO_ROOT, capture_output=True, text=True,
                           env=dict(stack["env"]), timeout=60)
    assert staff.returncode == 0, staff.stderr
    assert requests.get(f"{api}/support/tickets", params={"status": "open"}, headers=bearer,
                        timeout=10).json()["items"][0]["status"] == "answered"
    wait_for(lambda: any(i["title"] == "Alice replied to your request" for i in requests.get(
        f"{api}/notifications", params={"scope": "all"}, headers=bearer, timeout=10).json()["items"]),
        timeout=30, message="the staff reply in the action log")


def test_a_second_stack_on_the_same_folder_is_refused(stack):
    result = subprocess.run([sys.executable, "-m", "deploy.devstack"], cwd=REPO_ROOT, env=stack["env"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "already running" in result.stderr
    assert (stack["var_dir"] / "stack.json").exists()  # the running stack is untouched


def test_a_service_that_dies_is_restarted_alone(stack):
    old_pid = json.loads((stack["var_dir"] / "stack.json").read_text())["processes"]["billing"]
    gateway_pid = stack["processes"]["gateway"]
    os.kill(old_pid, signal.SIGKILL)

    def restarted():
        pids = json.loads((stack["var_dir"] / "stack.json").read_text())["processes"]
        return pids["billing"] != old_pid and pids

    pids = wait_for(restarted, timeout=30, message="billing restarted")
    assert pids["gateway"] == gateway_pid
    wait_for(lambda: requests.get(f"{stack['gateway']}/readyz", timeout=10).status_code == 200,
             timeout=60, message="ready again")


def test_sigterm_stops_every_process_cleanly(stack):
    """Runs last in this module: it stops the stack."""
    pids = json.loads((stack["var_dir"] / "stack.json").read_text())["processes"]
    process = stack["process"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
    deadline = time.monotonic() + 10
    for pid in pids.values():
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"process {pid} still runs after the stack stopped")
    assert not (stack["var_dir"] / "stack.json").exists()
    assert "[stack] stopped" in stack["output"].read_text()
