"""The storage domain without I/O: given events, when a command, then events or an error."""

from datetime import UTC, datetime

import pytest

from common.errors import Conflict, NotFound, ValidationFailed
from common.eventstore import RecordedEvent
from services.storage import domain
from services.storage.adapters.factory import parse_endpoints
from services.storage.adapters.s3 import access_policy

LOCATIONS = ["NL", "US"]


def replay(events, storage_id="st-1"):
    recorded = [RecordedEvent(position=i, stream_id=f"storage-{storage_id}", version=i, type=e.type, data=e.data,
                              metadata={}, recorded_at=datetime.now(UTC))
                for i, e in enumerate(events, start=1)]
    return domain.Storage.replay(storage_id, recorded)


def created(limit_gb=1, **extra):
    return domain.Storage.create("st-1", user_id="ann", name="Backups", limit_gb=limit_gb, location="NL",
                                 locations=LOCATIONS, s3uid="s3-0123456789", access_key="AKIA1",
                                 secret_sealed="sealed", **extra)


def then(storage, events):
    """The storage after ``events`` (as if appended)."""
    for offset, event in enumerate(events, start=1):
        storage.apply(RecordedEvent(position=0, stream_id="", version=storage.version + 1, type=event.type,
                                    data=event.data, metadata={}, recorded_at=datetime.now(UTC)))
    return storage


def with_bucket(name="photos", **kwargs):
    storage = replay(created(**kwargs))
    then(storage, storage.request_bucket(name, "op-1"))
    return then(storage, storage.finish_bucket(name, "op-1", True))


# -- bucket names (R-S3-3) -------------------------------------------------------------------

@pytest.mark.parametrize("name", ["abc", "my-bucket", "logs.2026.11", "a" * 63, "0day", "b-1.c-2"])
def test_valid_bucket_names_pass(name):
    assert domain.check_bucket_name(name) == name


@pytest.mark.parametrize("name, rule", [
    ("ab", "Between 3 and 63"), ("a" * 64, "Between 3 and 63"), ("", "Between 3 and 63"), (None, "Between 3 and 63"),
    ("Photos", "lowercase"), ("my_bucket", "lowercase"), ("my bucket", "lowercase"), ("bücket", "lowercase"),
    ("-abc", "begin and end"), ("abc-", "begin and end"), (".abc", "begin and end"), ("abc.", "begin and end"),
    ("a..b", "adjacent dots"), ("a.-b", "next to a hyphen"), ("a-.b", "next to a hyphen"),
    ("192.168.5.4", "IP address"), ("10.0.0.1", "IP address"),
    ("xn--abc", "reserved"), ("sthree-abc", "reserved"), ("abc-s3alias", "reserved"),
])
def test_invalid_bucket_names_are_refused_naming_the_rule(name, rule):
    with pytest.raises(ValidationFailed) as refused:
        domain.check_bucket_name(name)
    assert rule in refused.value.fields["name"][0]


# -- storages (R-S3-1/2) ---------------------------------------------------------------------

def test_a_new_storage_has_its_user_key_and_limit_in_bytes():
    storage = replay(created(limit_gb=2.5))
    assert storage.user_id == "ann" and storage.location == "NL" and storage.s3uid == "s3-0123456789"
    assert storage.iam_user == "panel-s3-0123456789" and storage.access_key == "AKIA1"
    assert storage.limit_bytes == 2_500_000_000 and storage.status == domain.ACTIVE
    assert domain.gb_of(storage.limit_bytes) == 2.5 and domain.gb_of(10 * domain.GB) == 10


@pytest.mark.parametrize("fields, bad", [
    ({"location": "DE"}, "location"), ({"limit_gb": 0}, "limit_gb"), ({"limit_gb": 1.0001}, "limit_gb"),
    ({"limit_gb": "ten"}, "limit_gb"), ({"limit_gb": True}, "limit_gb"), ({"limit_gb": 100_001}, "limit_gb"),
    ({"name": "  "}, "name"), ({"name": "x" * 65}, "name"),
])
def test_a_bad_storage_is_refused_naming_the_field(fields, bad):
    arguments = {"name": "Backups", "limit_gb": 10, "location": "NL"} | fields
    with pytest.raises(ValidationFailed) as refused:
        domain.check_new_storage(arguments["name"], arguments["limit_gb"], arguments["location"], LOCATIONS)
    assert list(refused.value.fields) == [bad]


def test_rotation_retires_the_old_key():
    storage = replay(created())
    then(storage, storage.rotate_credentials("AKIA2", "sealed-2"))
    assert storage.access_key == "AKIA2" and storage.retired_keys == ["AKIA1"]


# -- buckets ---------------------------------------------------------------------------------

def test_a_bucket_is_creating_then_active():
    storage = replay(created())
    then(storage, storage.request_bucket("photos", "op-1"))
    assert storage.buckets == {"photos": domain.CREATING}
    then(storage, storage.finish_bucket("photos", "op-1", True))
    assert storage.buckets == {"photos": domain.ACTIVE}
    assert storage.finish_bucket("photos", "op-1", True) == []  # a redelivered outcome changes nothing


def test_a_failed_creation_forgets_the_bucket():
    storage = replay(created())
    then(storage, storage.request_bucket("photos", "op-1"))
    then(storage, storage.finish_bucket("photos", "op-1", False, "taken"))
    assert storage.buckets == {}


def test_the_same_bucket_twice_is_a_conflict():
    storage = with_bucket()
    with pytest.raises(Conflict) as refused:
        storage.request_bucket("photos", "op-2")
    assert refused.value.code == "bucket_exists"


def test_a_non_empty_bucket_is_deleted_only_with_force():
    storage = with_bucket()
    with pytest.raises(Conflict) as refused:
        storage.request_bucket_deletion("photos", "op-2", force=False, empty=False)
    assert refused.value.code == "bucket_not_empty"
    assert [e.type for e in storage.request_bucket_deletion("photos", "op-2", force=True, empty=False)] == [
        "bucket_deletion_requested"]
    assert storage.request_bucket_deletion("photos", "op-2", force=False, empty=True)


def test_deleting_an_unknown_bucket_is_not_found():
    with pytest.raises(NotFound):
        with_bucket().request_bucket_deletion("other", "op-2", force=True, empty=True)


def test_a_storage_is_not_deleted_while_a_bucket_operation_runs():
    storage = with_bucket()
    then(storage, storage.request_bucket("logs", "op-2"))
    with pytest.raises(Conflict):
        storage.request_deletion("op-3")
    then(storage, storage.finish_bucket("logs", "op-2", True))
    then(storage, storage.request_deletion("op-3"))
    assert storage.status == domain.DELETING
    with pytest.raises(Conflict):
        storage.request_bucket("more", "op-4")
    then(storage, storage.finish_deletion("op-3", True))
    assert storage.status == domain.DELETED and not storage.live and storage.buckets == {}


# -- the limit -------------------------------------------------------------------------------

MB = 10**6


def observe(storage, used):
    events = storage.observe_usage(used, "2026-11-24T10:00:00+00:00")
    then(storage, events)
    return [(e.type, e.data.get("percent")) for e in events]


def test_alerts_fire_once_per_threshold_crossing_with_the_contract_fields():
    storage = replay(created(limit_gb=0.1))  # 100 MB
    assert observe(storage, 50 * MB) == []
    alert = storage.observe_usage(85 * MB, "2026-11-24T10:00:00+00:00")[0]
    assert alert.type == "storage_usage_alert"
    assert set(alert.data) == {"storage_id", "user_id", "name", "percent", "used_bytes", "limit_bytes", "at"}
    assert alert.data["percent"] == 80 and alert.data["limit_bytes"] == 100 * MB and alert.data["used_bytes"] == 85 * MB
    then(storage, [alert])
    assert observe(storage, 86 * MB) == []
    assert observe(storage, 91 * MB) == [("storage_usage_alert", 90)]
    assert observe(storage, 75 * MB) == [("storage_usage_alert_cleared", None)]
    assert observe(storage, 82 * MB) == [("storage_usage_alert", 80)]  # crossed again after falling below


def test_a_jump_past_several_thresholds_is_one_alert_for_the_highest():
    storage = replay(created(limit_gb=0.1))
    assert observe(storage, 95 * MB) == [("storage_usage_alert", 90)]
    assert observe(storage, 99 * MB) == []


def test_writes_are_suspended_at_100_percent_until_usage_is_below_the_limit():
    storage = replay(created(limit_gb=0.1))
    assert observe(storage, 100 * MB) == [("storage_usage_alert", 100), ("storage_writes_suspended", None)]
    assert storage.writes_suspended
    assert observe(storage, 120 * MB) == []
    assert observe(storage, 99 * MB) == [("storage_usage_alert_cleared", None), ("storage_writes_resumed", None)]
    assert not storage.writes_suspended and storage.alerted == {80, 90}


# -- usage queries (R-S3-4) ------------------------------------------------------------------

def test_usage_window_defaults_and_alignment():
    metric, start, end, step = domain.usage_window("storage", None, None, None, now=1_000_000.0)
    assert (metric, end, step) == ("storage", 1_000_000.0, 300) and start == (1_000_000 - 86400) // 300 * 300
    assert domain.usage_window("bandwidth", "2026-11-24T00:00:00Z", "2026-11-24T01:00:00Z", "5m", 0)[3] == 300


@pytest.mark.parametrize("args, field", [
    (("cpu", None, None, None), "metric"), (("storage", None, None, "30"), "step"),
    (("storage", None, None, "1w"), "step"), (("storage", "soon", None, None), "from"),
    (("storage", None, "later", None), "to"), (("storage", 200.0, 100.0, "60"), "from"),
    (("storage", 0, 10_000_000, "60"), "step"),
])
def test_bad_usage_queries_name_the_field(args, field):
    with pytest.raises(ValidationFailed) as refused:
        domain.usage_window(*args, now=1_000_000.0)
    assert field in refused.value.fields


def test_storage_points_are_the_most_used_per_step_and_bandwidth_the_sum():
    samples = [(0, 10, None, None), (30, 50, 5, 7), (59, 40, 1, 1), (60, 45, None, None), (130, 20, 3, 0)]
    assert domain.aggregate_usage("storage", samples, 0, 60) == {"points": [[0, 50], [60, 45], [120, 20]]}
    bandwidth = domain.aggregate_usage("bandwidth", samples, 0, 60)
    assert bandwidth == {"points": [[0, 14], [120, 3]], "in": [[0, 6], [120, 3]], "out": [[0, 8], [120, 0]]}


# -- adapters' pure parts --------------------------------------------------------------------

def test_s3_endpoints_parse_as_location_url_pairs():
    assert parse_endpoints("NL=http://127.0.0.1:9208, us=http://127.0.0.1:9209/") == {
        "NL": "http://127.0.0.1:9208", "US": "http://127.0.0.1:9209"}
    with pytest.raises(ValueError):
        parse_endpoints("NL:http://x")


def test_the_access_policy_allows_exactly_the_storages_buckets():
    policy = access_policy({"b", "a"})
    allow = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert allow[0]["Resource"] == ["arn:aws:s3:::a", "arn:aws:s3:::a/*", "arn:aws:s3:::b", "arn:aws:s3:::b/*"]
    # No buckets: no Allow at all (an Allow without Resource would allow everything).
    assert [s["Effect"] for s in access_policy(set())["Statement"]] == ["Deny"]


def test_the_key_policy_keeps_buckets_other_operations_are_creating_and_drops_deleted_ones():
    """Bucket operations of one storage may run at once: the policy one writes must not
    drop a bucket another is creating, nor keep one whose deletion was asked for."""
    storage = with_bucket("photos")
    then(storage, storage.request_bucket("logs", "op-2"))
    then(storage, storage.request_bucket("backups", "op-3"))
    assert storage.policy_buckets() == ["backups", "logs", "photos"]
    then(storage, storage.request_bucket_deletion("photos", "op-4", force=True, empty=False))
    then(storage, storage.finish_bucket("backups", "op-3", False, "taken"))
    assert storage.policy_buckets() == ["logs"]
