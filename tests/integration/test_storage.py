"""S3 storage through the gateway (R-S3-1…5): the real storage and notify services and the
gateway on a real RabbitMQ, against S3-compatible stand-ins (moto's server mode with IAM
authorization enforced and a traffic meter, one per location) reached with boto3 — both by
the service and, with the credentials the API hands out, by the "customer"."""

import json
import uuid

import pytest
import requests
from botocore.exceptions import ClientError
from cryptography.fernet import Fernet
from nameko.standalone.rpc import ClusterRpcProxy

from common import topology
from common.db import create_engine
from deploy.components import migrate
from gateway.service import GatewayService
from gateway.sessions import SessionStore
from services.notify.service import NotifyService
from services.storage.service import StorageService
from tests.support import free_port, wait_for


def unique(prefix="b"):
    """Bucket names are one namespace per location (and the stand-ins live for the module)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def error_code(error):
    return error.response["Error"]["Code"]


class Panel:
    def __init__(self, amqp_uri, api, sessions, cluster):
        self.amqp_uri = amqp_uri
        self.api = api
        self.sessions = sessions
        self.cluster = cluster
        self.tokens = {}

    def login(self, user_id):
        self.tokens[user_id], _ = self.sessions.create(f"session-{user_id}-{uuid.uuid4().hex[:6]}", user_id)

    def call(self, method, path, user="ann", headers=None, **kwargs):
        return requests.request(method, f"{self.api}{path}", timeout=30, **kwargs,
                                headers={"Authorization": f"Bearer {self.tokens[user]}", **(headers or {})})

    def get(self, path, user="ann", **kwargs):
        return self.call("GET", path, user, **kwargs)

    def post(self, path, body=None, user="ann"):
        return self.call("POST", path, user, json=body if body is not None else {})

    def delete(self, path, user="ann", **kwargs):
        return self.call("DELETE", path, user, **kwargs)

    def create_storage(self, user="ann", name="Backups", limit_gb=10, location="NL"):
        answer = self.post("/storage/s3", {"name": name, "limit_gb": limit_gb, "location": location}, user)
        assert answer.status_code == 201, answer.text
        return answer.json()

    def wait_operation(self, operation_id, user="ann", timeout=30):
        def finished():
            operation = self.get(f"/operations/{operation_id}", user).json()
            return operation if operation["status"] in ("succeeded", "failed") else None

        return wait_for(finished, timeout=timeout, interval=0.1, message=f"operation {operation_id} finished")

    def create_bucket(self, storage_id, name, user="ann"):
        answer = self.post(f"/storage/s3/{storage_id}/buckets", {"name": name}, user)
        assert answer.status_code == 202, answer.text
        operation = self.wait_operation(answer.json()["operation"]["id"], user)
        assert operation["status"] == "succeeded", operation
        return operation

    def credentials(self, storage_id, user="ann"):
        answer = self.get(f"/storage/s3/{storage_id}/credentials", user)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def sample(self, storage_id=None):
        with ClusterRpcProxy({"AMQP_URI": self.amqp_uri}) as rpc:
            return rpc.storage.sample_usage(storage_id)

    def usage(self, storage_id, metric, user="ann", **params):
        answer = self.get(f"/storage/s3/{storage_id}/usage", user, params=dict(params, metric=metric, step="60"))
        assert answer.status_code == 200, answer.text
        return answer.json()

    def notifications(self, user="ann"):
        return self.get("/notifications", user, params={"scope": "all", "per_page": 500}).json()["items"]


@pytest.fixture
def panel(start_service, amqp_uri, tmp_path, s3_cluster):
    urls = {name: f"sqlite:///{tmp_path / (name + '.db')}" for name in ("storage", "notify", "gateway")}
    for name, url in urls.items():
        migrate(name, create_engine(url))
    topology.declare(amqp_uri, [StorageService, NotifyService])
    start_service(StorageService, DATABASE_URL=urls["storage"], METRICS_PORT="off", OUTBOX_POLL_SECONDS=0.2,
                  STORAGE_SECRETS_KEY=Fernet.generate_key().decode(), USAGE_SAMPLE_SECONDS=3600,
                  **s3_cluster.config)
    start_service(NotifyService, DATABASE_URL=urls["notify"], METRICS_PORT="off", OUTBOX_POLL_SECONDS=0.2)
    port = free_port()
    start_service(GatewayService, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}", DATABASE_URL=urls["gateway"],
                  METRICS_PORT="off", SESSION_COOKIE_SECURE=False)
    panel = Panel(amqp_uri, f"http://127.0.0.1:{port}/api/v1", SessionStore(create_engine(urls["gateway"])),
                  s3_cluster)
    panel.storage_db = urls["storage"]
    panel.login("ann")
    panel.login("bob")
    return panel


# -- R-S3-1/2/3/4/5: the whole path --------------------------------------------------------

def test_a_storage_takes_objects_through_its_credentials_and_its_usage_grows(panel, s3_cluster):
    """R-S3-1…5: create a storage and a bucket, put and get an object with the credentials
    handed out, watch storage and bandwidth grow, delete the bucket."""
    storage = panel.create_storage(name="Backups", limit_gb=10, location="NL")
    assert storage["name"] == "Backups" and storage["limit_gb"] == 10 and storage["location"] == "NL"
    assert storage["s3uid"].startswith("s3-") and storage["used_bytes"] == 0
    listed = panel.get("/storage/s3").json()
    assert listed["total"] == 1 and listed["page"] == 1 and listed["per_page"] == 50
    assert {k: listed["items"][0][k] for k in ("id", "name", "limit_gb", "location", "s3uid", "used_bytes")} == {
        k: storage[k] for k in ("id", "name", "limit_gb", "location", "s3uid", "used_bytes")}

    name = unique("photos")
    accepted = panel.post(f"/storage/s3/{storage['id']}/buckets", {"name": name})
    assert accepted.status_code == 202 and accepted.json()["bucket"] == {
        "name": name, "status": "creating", "operation_id": accepted.json()["operation"]["id"]}
    assert panel.wait_operation(accepted.json()["operation"]["id"])["status"] == "succeeded"
    buckets = panel.get(f"/storage/s3/{storage['id']}/buckets").json()
    assert [(b["name"], b["status"]) for b in buckets["items"]] == [(name, "active")] and buckets["total"] == 1

    credentials = panel.credentials(storage["id"])
    assert set(credentials) >= {"access_key", "secret_key", "endpoints", "region"}
    assert credentials["endpoints"] == [s3_cluster.endpoints["NL"]]
    client = s3_cluster.client(credentials)
    body = b"x" * 300_000
    client.put_object(Bucket=name, Key="holiday/photo.jpg", Body=body)
    assert client.get_object(Bucket=name, Key="holiday/photo.jpg")["Body"].read() == body

    assert panel.sample(storage["id"]) == 1
    stored = panel.usage(storage["id"], "storage")
    assert stored["metric"] == "storage" and stored["unit"] == "bytes"
    assert stored["points"][-1][1] == 300_000
    traffic = panel.usage(storage["id"], "bandwidth")
    assert sum(v for _, v in traffic["in"]) >= 300_000 and sum(v for _, v in traffic["out"]) >= 300_000
    assert panel.get(f"/storage/s3/{storage['id']}").json()["used_bytes"] == 300_000

    client.get_object(Bucket=name, Key="holiday/photo.jpg")["Body"].read()  # 300 kB more out
    panel.sample(storage["id"])
    again = panel.usage(storage["id"], "bandwidth")
    assert sum(v for _, v in again["out"]) >= sum(v for _, v in traffic["out"]) + 300_000
    assert sum(v for _, v in again["in"]) < sum(v for _, v in traffic["in"]) + 300_000  # a download is not an upload

    refused = panel.delete(f"/storage/s3/{storage['id']}/buckets/{name}")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "bucket_not_empty"
    forced = panel.delete(f"/storage/s3/{storage['id']}/buckets/{name}", params={"force": "true"})
    assert forced.status_code == 202
    assert panel.wait_operation(forced.json()["operation"]["id"])["status"] == "succeeded"
    assert panel.get(f"/storage/s3/{storage['id']}/buckets").json()["total"] == 0
    with pytest.raises(ClientError) as gone:
        s3_cluster.admin("NL").head_bucket(Bucket=name)
    assert error_code(gone.value) in ("404", "NoSuchBucket")


def test_an_empty_bucket_is_deleted_without_force(panel, s3_cluster):
    storage = panel.create_storage(location="US")
    name = unique()
    panel.create_bucket(storage["id"], name)
    answer = panel.delete(f"/storage/s3/{storage['id']}/buckets/{name}")
    assert answer.status_code == 202
    assert panel.wait_operation(answer.json()["operation"]["id"])["status"] == "succeeded"
    assert name not in [b["Name"] for b in s3_cluster.admin("US").list_buckets()["Buckets"]]


@pytest.mark.parametrize("name, rule", [
    ("ab", "Between 3 and 63"), ("a" * 64, "Between 3 and 63"), ("My-Bucket", "lowercase"),
    ("under_score", "lowercase"), ("-leading", "begin and end"), ("trailing.", "begin and end"),
    ("two..dots", "adjacent dots"), ("192.168.5.4", "IP address"),
])
def test_bucket_names_follow_the_s3_rules_and_a_refusal_names_the_rule(panel, name, rule):
    storage = panel.create_storage()
    answer = panel.post(f"/storage/s3/{storage['id']}/buckets", {"name": name})
    assert answer.status_code == 400
    assert rule in answer.json()["error"]["fields"]["name"][0]


def test_a_bucket_name_in_use_in_the_location_is_a_409(panel):
    name = unique()
    first = panel.create_storage(location="NL")
    panel.create_bucket(first["id"], name)
    again = panel.post(f"/storage/s3/{first['id']}/buckets", {"name": name})
    assert again.status_code == 409 and again.json()["error"]["code"] == "bucket_exists"
    other = panel.create_storage(user="bob", location="NL")
    taken = panel.post(f"/storage/s3/{other['id']}/buckets", {"name": name}, user="bob")
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "bucket_name_taken"


@pytest.mark.parametrize("body, field", [
    ({"name": "x", "limit_gb": 10, "location": "MARS"}, "location"),
    ({"name": "x", "limit_gb": 10, "location": "DE"}, "location"),  # a location with no cluster here
    ({"name": "x", "limit_gb": 0, "location": "NL"}, "limit_gb"),
    ({"name": "x", "limit_gb": 1.0005, "location": "NL"}, "limit_gb"),
    ({"name": "", "limit_gb": 10, "location": "NL"}, "name"),
    ({"limit_gb": 10, "location": "NL"}, "name"),
])
def test_a_bad_storage_is_a_400_naming_the_field(panel, body, field):
    answer = panel.post("/storage/s3", body)
    assert answer.status_code == 400 and field in answer.json()["error"]["fields"], answer.text


@pytest.mark.parametrize("params, field", [
    ({"metric": "latency"}, "metric"), ({"metric": "storage", "step": "10"}, "step"),
    ({"metric": "storage", "step": "often"}, "step"), ({"metric": "storage", "from": "yesterday"}, "from"),
    ({"metric": "bandwidth", "from": "2026-11-24T10:00:00Z", "to": "2026-11-24T09:00:00Z"}, "from"),
    ({"metric": "storage", "from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z", "step": "60"}, "step"),
    ({}, "metric"),
])
def test_a_bad_usage_query_is_a_400_naming_the_field(panel, params, field):
    storage = panel.create_storage()
    answer = panel.get(f"/storage/s3/{storage['id']}/usage", params=params)
    assert answer.status_code == 400 and field in answer.json()["error"]["fields"], answer.text


# -- isolation ------------------------------------------------------------------------------

def test_another_customers_storage_is_a_404_on_every_route(panel):
    storage = panel.create_storage(user="ann")
    name = unique()
    panel.create_bucket(storage["id"], name)
    base = f"/storage/s3/{storage['id']}"
    for method, path, kwargs in [
        ("GET", base, {}), ("DELETE", base, {}), ("GET", f"{base}/buckets", {}),
        ("POST", f"{base}/buckets", {"json": {"name": unique()}}), ("DELETE", f"{base}/buckets/{name}", {}),
        ("DELETE", f"{base}/buckets/{name}", {"params": {"force": "true"}}), ("GET", f"{base}/credentials", {}),
        ("POST", f"{base}/credentials/rotate", {}), ("GET", f"{base}/usage", {"params": {"metric": "storage"}}),
    ]:
        answer = panel.call(method, path, "bob", **kwargs)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found", (method, path)
    assert panel.get("/storage/s3", "bob").json()["total"] == 0
    assert panel.get(f"{base}/buckets").json()["total"] == 1  # nothing happened to it


def test_the_storage_routes_need_a_session(panel):
    assert requests.get(f"{panel.api}/storage/s3", timeout=10).status_code == 401


def test_one_customers_credentials_cannot_reach_another_customers_buckets(panel, s3_cluster):
    ann, bob = panel.create_storage(user="ann"), panel.create_storage(user="bob")
    ann_bucket, bob_bucket = unique("ann"), unique("bob")
    panel.create_bucket(ann["id"], ann_bucket, "ann")
    panel.create_bucket(bob["id"], bob_bucket, "bob")
    ann_client = s3_cluster.client(panel.credentials(ann["id"], "ann"))
    bob_client = s3_cluster.client(panel.credentials(bob["id"], "bob"))
    ann_client.put_object(Bucket=ann_bucket, Key="secret.txt", Body=b"ann's")

    for attempt in (lambda: bob_client.get_object(Bucket=ann_bucket, Key="secret.txt"),
                    lambda: bob_client.list_objects_v2(Bucket=ann_bucket),
                    lambda: bob_client.put_object(Bucket=ann_bucket, Key="x", Body=b"bob's"),
                    lambda: bob_client.delete_object(Bucket=ann_bucket, Key="secret.txt"),
                    lambda: bob_client.list_buckets(),
                    lambda: bob_client.create_bucket(Bucket=unique("rogue"))):
        with pytest.raises(ClientError) as refused:
            attempt()
        assert error_code(refused.value) == "AccessDenied"
    bob_client.put_object(Bucket=bob_bucket, Key="mine.txt", Body=b"bob's")  # its own bucket works
    assert ann_client.get_object(Bucket=ann_bucket, Key="secret.txt")["Body"].read() == b"ann's"


def test_a_rotated_key_works_at_once_and_the_old_one_stops(panel, s3_cluster):
    storage = panel.create_storage()
    name = unique()
    panel.create_bucket(storage["id"], name)
    old = panel.credentials(storage["id"])
    s3_cluster.client(old).put_object(Bucket=name, Key="a", Body=b"1")

    rotated = panel.post(f"/storage/s3/{storage['id']}/credentials/rotate")
    assert rotated.status_code == 200 and rotated.headers["Cache-Control"] == "no-store"
    new = rotated.json()
    assert new["access_key"] != old["access_key"] and new["secret_key"] != old["secret_key"]
    assert panel.credentials(storage["id"]) == new
    assert s3_cluster.client(new).get_object(Bucket=name, Key="a")["Body"].read() == b"1"
    with pytest.raises(ClientError) as refused:
        s3_cluster.client(old).get_object(Bucket=name, Key="a")
    assert error_code(refused.value) == "InvalidAccessKeyId"
    entries = wait_for(lambda: [n for n in panel.notifications() if n["title"] == "New keys for storage Backups"],
                       message="the action-log entry of the rotation")
    published = json.dumps(entries)
    assert len(entries) == 1 and old["secret_key"] not in published and new["secret_key"] not in published


def test_the_secret_key_is_never_stored_in_clear(panel):
    storage = panel.create_storage()
    secret = panel.credentials(storage["id"])["secret_key"]
    engine = create_engine(panel.storage_db)
    with engine.connect() as conn:
        for table in ("events", "storages", "operations"):
            for row in conn.exec_driver_sql(f"SELECT * FROM {table}").all():
                assert secret not in repr(row), table


# -- the limit -------------------------------------------------------------------------------

def test_the_limit_alerts_at_80_90_and_100_percent_and_a_full_storage_takes_no_writes(panel, s3_cluster):
    """R-S3-4: a 1 MB storage (0.001 GB). Alerts reach the action log once per crossing; at
    100 % the key can read and delete but not write, until usage is below the limit again."""
    storage = panel.create_storage(name="Tiny", limit_gb=0.001)
    name = unique()
    panel.create_bucket(storage["id"], name)
    client = s3_cluster.client(panel.credentials(storage["id"]))

    def alerts():
        return sorted(n["title"] for n in panel.notifications() if n["title"].startswith("Storage Tiny"))

    client.put_object(Bucket=name, Key="a", Body=b"a" * 850_000)
    panel.sample(storage["id"])
    wait_for(lambda: alerts() == ["Storage Tiny is 80% full"], message=lambda: f"80 % alert (have {alerts()})")
    panel.sample(storage["id"])  # no new crossing: no new alert
    client.put_object(Bucket=name, Key="b", Body=b"b" * 100_000)
    panel.sample(storage["id"])
    wait_for(lambda: len(alerts()) == 2, message=lambda: f"90 % alert (have {alerts()})")
    client.put_object(Bucket=name, Key="c", Body=b"c" * 100_000)
    panel.sample(storage["id"])
    wait_for(lambda: len(alerts()) == 3, message=lambda: f"100 % alert (have {alerts()})")
    assert alerts() == ["Storage Tiny is 80% full", "Storage Tiny is 90% full", "Storage Tiny is full"]
    assert panel.get(f"/storage/s3/{storage['id']}").json()["writes_suspended"] is True

    with pytest.raises(ClientError) as refused:
        client.put_object(Bucket=name, Key="d", Body=b"d")
    assert error_code(refused.value) == "AccessDenied"
    assert len(client.get_object(Bucket=name, Key="a")["Body"].read()) == 850_000  # reads still work
    client.delete_object(Bucket=name, Key="c")  # deletes too

    panel.sample(storage["id"])
    assert panel.get(f"/storage/s3/{storage['id']}").json()["writes_suspended"] is False
    client.put_object(Bucket=name, Key="d", Body=b"d")
    panel.sample(storage["id"])
    assert len(alerts()) == 3  # still above 90 %: nothing new
    entry = next(n for n in panel.notifications() if n["title"] == "Storage Tiny is full")
    assert entry["level"] == "error" and "GB" in entry["body"]


# -- deleting a storage ----------------------------------------------------------------------

def test_deleting_a_storage_removes_its_buckets_objects_keys_and_iam_user(panel, s3_cluster):
    storage = panel.create_storage(location="US")
    names = [unique(), unique()]
    for name in names:
        panel.create_bucket(storage["id"], name)
    credentials = panel.credentials(storage["id"])
    client = s3_cluster.client(credentials)
    for name in names:
        client.put_object(Bucket=name, Key="file", Body=b"data")

    accepted = panel.delete(f"/storage/s3/{storage['id']}")
    assert accepted.status_code == 202
    operation = panel.wait_operation(accepted.json()["operation"]["id"])
    assert operation["status"] == "succeeded", operation
    assert operation["kind"] == "storage.delete"

    existing = [b["Name"] for b in s3_cluster.admin("US").list_buckets()["Buckets"]]
    assert not set(names) & set(existing)
    with pytest.raises(ClientError) as no_user:
        s3_cluster.admin("US", "iam").get_user(UserName=f"panel-{storage['s3uid']}")
    assert error_code(no_user.value) == "NoSuchEntity"
    with pytest.raises(ClientError) as no_key:
        client.list_objects_v2(Bucket=names[0])
    assert error_code(no_key.value) in ("InvalidAccessKeyId", "NoSuchBucket")
    assert panel.get(f"/storage/s3/{storage['id']}").status_code == 404
    assert panel.get("/storage/s3").json()["total"] == 0
    titles = [n["title"] for n in panel.notifications()]
    assert titles.count("Delete storage Backups") == 2  # started, then its result (R-LOG-2)
    created = wait_for(lambda: [n for n in panel.notifications() if n["title"] == "New storage Backups"],
                       message="the action-log entry of the new storage")
    assert len(created) == 1 and created[0]["body"].endswith("in US.") and created[0]["level"] == "success"


def test_a_bucket_request_retried_with_its_idempotency_key_creates_it_once(panel):
    storage = panel.create_storage()
    name = unique("retried")
    path = f"/storage/s3/{storage['id']}/buckets"
    first = panel.call("POST", path, "ann", json={"name": name}, headers={"Idempotency-Key": "bucket-once"})
    assert first.status_code == 202, first.text
    again = panel.call("POST", path, "ann", json={"name": name}, headers={"Idempotency-Key": "bucket-once"})
    assert again.status_code == 202 and again.json()["operation"]["id"] == first.json()["operation"]["id"]
    assert panel.wait_operation(first.json()["operation"]["id"])["status"] == "succeeded"
    after = panel.call("POST", path, "ann", json={"name": name}, headers={"Idempotency-Key": "bucket-once"})
    assert after.json()["bucket"]["status"] == "active"
    other = panel.call("POST", path, "ann", json={"name": unique("other")}, headers={"Idempotency-Key": "bucket-once"})
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    without_key = panel.post(path, {"name": name})
    assert without_key.status_code == 409  # the name is taken: only the key makes a retry harmless
    assert [b["name"] for b in panel.get(path).json()["items"]] == [name]
