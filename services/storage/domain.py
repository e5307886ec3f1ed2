"""The storage domain: a customer's S3 storages, their buckets, keys and usage limits. Pure code.

A ``Storage`` (stream ``storage-<id>``) lives in one location (NL, US, …: an S3-compatible
endpoint each), has a limit in GB, a unique ``s3uid``, one IAM user on the backend and one
access key at a time (rotation replaces it). Its buckets are named by the customer under the
S3 naming rules (``check_bucket_name``); creating and deleting them, and deleting the whole
storage, are operations (the backend work happens afterwards). Sampled usage is weighed
against the limit by ``observe_usage``: alerts at 80, 90 and 100 % (once per crossing), and
writes suspended while the storage is full.

Secrets never appear here in clear: the aggregate carries the access key's secret only as
the ciphertext the use cases sealed with the server key.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC
from decimal import Decimal, InvalidOperation

from common.errors import Conflict, NotFound, ValidationFailed, error_with_code
from common.eventstore import Aggregate, NewEvent

GB = 10**9  # limits are decimal gigabytes, as storage is sold (and as notify shows them)
LIMIT_GB_MIN, LIMIT_GB_MAX = Decimal("0.001"), Decimal(100000)  # 1 MB steps, up to 100 TB
NAME_MAX = 64
MAX_BUCKETS = 100
THRESHOLDS = (80, 90, 100)

ACTIVE, DELETING, DELETED = "active", "deleting", "deleted"
CREATING = "creating"  # a bucket being created; buckets are also ACTIVE or DELETING

_BUCKET_CHARS = re.compile(r"^[a-z0-9.-]+$")
_IPV4_FORM = re.compile(r"^\d+\.\d+\.\d+\.\d+$")


def check_bucket_name(name):
    """S3's bucket naming rules; ``ValidationFailed`` naming the rule broken in ``fields.name``."""
    def refuse(rule):
        raise ValidationFailed(f"The bucket name is invalid: {rule}", fields={"name": [rule]})

    if not isinstance(name, str) or not 3 <= len(name) <= 63:
        refuse("Between 3 and 63 characters long.")
    if not _BUCKET_CHARS.match(name):
        refuse("Only lowercase letters, digits, hyphens (-) and dots (.).")
    if not (name[0].isalnum() and name[-1].isalnum()):
        refuse("Must begin and end with a letter or a digit.")
    if ".." in name:
        refuse("Must not contain two adjacent dots.")
    if ".-" in name or "-." in name:
        refuse("A dot must not be next to a hyphen.")
    if _IPV4_FORM.match(name):
        refuse("Must not be formatted as an IP address (such as 192.168.5.4).")
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        refuse("Must not start with xn-- or sthree-, nor end with -s3alias or --ol-s3 (reserved).")
    return name


def limit_bytes_of(limit_gb):
    """Bytes of a limit in GB (a number with at most 3 decimals: 1 MB steps); ValueError
    when it is not one, or out of range."""
    try:
        # (True would read as 1: a flag is not a size)
        if isinstance(limit_gb, float):  # a JSON number: 1.234 may arrive as 1.2340000000000002
            limit_gb = round(limit_gb, 9)
        value = Decimal("NaN" if isinstance(limit_gb, bool) else str(limit_gb))
    except InvalidOperation:
        raise ValueError("not a number")
    if not value.is_finite() or value != value.quantize(Decimal("0.001")) or not LIMIT_GB_MIN <= value <= LIMIT_GB_MAX:
        raise ValueError("out of range")
    return int(value * GB)


def gb_of(limit_bytes):
    """A limit in GB as the API shows it: a whole number when it is one."""
    value = Decimal(limit_bytes) / GB
    return int(value) if value == value.to_integral_value() else float(value)


def check_new_storage(name, limit_gb, location, locations):
    """The fields of a new storage; ``ValidationFailed`` naming each bad one. Returns the
    name (trimmed) and the limit in bytes."""
    problems = {}
    limit_bytes = None
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > NAME_MAX \
            or any(ord(c) < 32 for c in name):
        problems["name"] = [f"Text of 1 to {NAME_MAX} characters."]
    try:
        limit_bytes = limit_bytes_of(limit_gb)
    except ValueError:
        problems["limit_gb"] = [f"A number of GB from {LIMIT_GB_MIN} to {LIMIT_GB_MAX:f}, at most 3 decimals."]
    if location not in locations:
        problems["location"] = [f"One of {', '.join(locations)}." if locations else "No location is configured."]
    if problems:
        raise ValidationFailed("The storage is invalid.", fields=problems)
    return name.strip(), limit_bytes


def iam_user_of(s3uid):
    """The storage's IAM user on the backend."""
    return f"panel-{s3uid}"


@dataclass
class Storage(Aggregate):
    stream_prefix = "storage"

    storage_id: str
    version: int = 0
    user_id: str = None
    name: str = None
    limit_bytes: int = 0
    location: str = None
    s3uid: str = None
    iam_user: str = None
    status: str = ACTIVE
    access_key: str = None
    secret_sealed: str = None
    retired_keys: list = field(default_factory=list)
    buckets: dict = field(default_factory=dict)  # name -> CREATING | ACTIVE | DELETING
    bucket_requests: dict = field(default_factory=dict)  # Idempotency-Key -> (name, operation_id)
    writes_suspended: bool = False
    alerted: set = field(default_factory=set)
    operation_id: str = None  # the storage's own deletion, while it runs

    # -- folding -----------------------------------------------------------------------

    def _on_storage_created(self, data):
        self.user_id, self.name, self.limit_bytes = data["user_id"], data["name"], data["limit_bytes"]
        self.location, self.s3uid, self.iam_user = data["location"], data["s3uid"], data["iam_user"]

    def _on_storage_credentials_issued(self, data):
        if self.access_key:
            self.retired_keys.append(self.access_key)
        self.access_key, self.secret_sealed = data["access_key"], data["secret_sealed"]

    def _on_bucket_requested(self, data):
        self.buckets[data["name"]] = CREATING
        if data.get("idempotency_key"):
            self.bucket_requests[data["idempotency_key"]] = (data["name"], data["operation_id"])

    def _on_bucket_created(self, data):
        self.buckets[data["name"]] = ACTIVE

    def _on_bucket_creation_failed(self, data):
        self.buckets.pop(data["name"], None)

    def _on_bucket_deletion_requested(self, data):
        self.buckets[data["name"]] = DELETING

    def _on_bucket_deleted(self, data):
        self.buckets.pop(data["name"], None)

    def _on_bucket_deletion_failed(self, data):
        if data["name"] in self.buckets:
            self.buckets[data["name"]] = ACTIVE

    def _on_storage_deletion_requested(self, data):
        self.status, self.operation_id = DELETING, data["operation_id"]

    def _on_storage_deletion_failed(self, data):
        self.status, self.operation_id = ACTIVE, None

    def _on_storage_deleted(self, data):
        self.status, self.operation_id = DELETED, None
        self.buckets.clear()

    def _on_storage_writes_suspended(self, data):
        self.writes_suspended = True

    def _on_storage_writes_resumed(self, data):
        self.writes_suspended = False

    def _on_storage_usage_alert(self, data):
        self.alerted |= {t for t in THRESHOLDS if t <= data["percent"]}

    def _on_storage_usage_alert_cleared(self, data):
        self.alerted -= set(data["thresholds"])

    # -- commands ----------------------------------------------------------------------

    @property
    def live(self):
        return self.exists and self.status != DELETED

    def owned_by(self, user_id):
        return self.live and self.user_id == user_id

    def _require_active(self):
        if self.status != ACTIVE:
            raise Conflict(f"The storage is {self.status}.")

    @staticmethod
    def create(storage_id, *, user_id, name, limit_gb, location, locations, s3uid, access_key, secret_sealed,
               idempotency_key=None):
        name, limit_bytes = check_new_storage(name, limit_gb, location, locations)
        return [
            NewEvent("storage_created", {
                "storage_id": storage_id, "user_id": user_id, "name": name, "limit_bytes": limit_bytes,
                "location": location, "s3uid": s3uid, "iam_user": iam_user_of(s3uid),
                "idempotency_key": idempotency_key}),
            NewEvent("storage_credentials_issued", {"access_key": access_key, "secret_sealed": secret_sealed,
                                                    "previous_access_key": None}),
        ]

    def rotate_credentials(self, access_key, secret_sealed):
        self._require_active()
        return [NewEvent("storage_credentials_issued", {"access_key": access_key, "secret_sealed": secret_sealed,
                                                        "previous_access_key": self.access_key})]

    def check_new_bucket(self, name):
        """Whether a bucket ``name`` may be requested now (before asking the backend anything)."""
        check_bucket_name(name)
        self._require_active()
        if name in self.buckets:
            raise error_with_code(Conflict, "bucket_exists", f"This storage already has a bucket {name}.")
        if len(self.buckets) >= MAX_BUCKETS:
            raise error_with_code(Conflict, "too_many_buckets", f"A storage holds at most {MAX_BUCKETS} buckets.")

    def earlier_bucket_request(self, name, idempotency_key):
        """The operation id of the request this ``Idempotency-Key`` made before (None when it
        is new); ``idempotency_key_reused`` when it named another bucket."""
        earlier = self.bucket_requests.get(idempotency_key) if idempotency_key else None
        if earlier is None:
            return None
        if earlier[0] != name:
            raise error_with_code(Conflict, "idempotency_key_reused",
                                  "This Idempotency-Key was used for another bucket.")
        return earlier[1]

    def request_bucket(self, name, operation_id, idempotency_key=None):
        self.check_new_bucket(name)
        return [NewEvent("bucket_requested", {"name": name, "operation_id": operation_id,
                                              "idempotency_key": idempotency_key})]

    def finish_bucket(self, name, operation_id, succeeded, reason=None):
        if self.buckets.get(name) != CREATING:
            return []  # already finished (a redelivered outcome)
        if succeeded:
            return [NewEvent("bucket_created", {"name": name, "operation_id": operation_id})]
        return [NewEvent("bucket_creation_failed", {"name": name, "operation_id": operation_id, "reason": reason})]

    def request_bucket_deletion(self, name, operation_id, force, empty):
        """``empty``: whether the backend holds no object in it now."""
        if self.buckets.get(name) not in (ACTIVE, DELETING):
            raise NotFound("No such bucket.")
        self._require_active()
        if self.buckets[name] == DELETING:
            raise error_with_code(Conflict, "bucket_deleting", "This bucket is already being deleted.")
        if not empty and not force:
            raise error_with_code(Conflict, "bucket_not_empty",
                                  "The bucket is not empty: delete its objects first, or ask with force=true.")
        return [NewEvent("bucket_deletion_requested", {"name": name, "operation_id": operation_id, "force": force})]

    def finish_bucket_deletion(self, name, operation_id, succeeded):
        if self.buckets.get(name) != DELETING:
            return []
        kind = "bucket_deleted" if succeeded else "bucket_deletion_failed"
        return [NewEvent(kind, {"name": name, "operation_id": operation_id})]

    def bucket_removed(self, name, operation_id):
        """A bucket removed on the way while the whole storage is being deleted."""
        if name not in self.buckets:
            return []
        return [NewEvent("bucket_deleted", {"name": name, "operation_id": operation_id})]

    def request_deletion(self, operation_id):
        self._require_active()
        busy = sorted(n for n, s in self.buckets.items() if s != ACTIVE)
        if busy:
            raise error_with_code(Conflict, "bucket_operation_running",
                                  f"Wait for the operations on {', '.join(busy)} to finish.")
        return [NewEvent("storage_deletion_requested", {"operation_id": operation_id})]

    def finish_deletion(self, operation_id, succeeded):
        if self.status != DELETING or self.operation_id != operation_id:
            return []
        kind = "storage_deleted" if succeeded else "storage_deletion_failed"
        return [NewEvent(kind, {"operation_id": operation_id})]

    def observe_usage(self, used_bytes, at):
        """Weigh a usage sample against the limit: an alert when a threshold is crossed
        upwards (one event, for the highest threshold newly reached), a clearing when usage
        falls back below thresholds already alerted, and writes suspended at 100 % until
        usage is below the limit again."""
        if self.status != ACTIVE:
            return []
        percent = used_bytes * 100 / self.limit_bytes
        events = []
        reached = [t for t in THRESHOLDS if percent >= t]
        fresh = [t for t in reached if t not in self.alerted]
        if fresh:
            events.append(NewEvent("storage_usage_alert", {
                "storage_id": self.storage_id, "user_id": self.user_id, "name": self.name, "percent": max(fresh),
                "used_bytes": used_bytes, "limit_bytes": self.limit_bytes, "at": at}))
        cleared = sorted(t for t in self.alerted if percent < t)
        if cleared:
            events.append(NewEvent("storage_usage_alert_cleared", {"thresholds": cleared, "used_bytes": used_bytes}))
        full = used_bytes >= self.limit_bytes
        if full and not self.writes_suspended:
            events.append(NewEvent("storage_writes_suspended", {"used_bytes": used_bytes,
                                                                "limit_bytes": self.limit_bytes}))
        elif not full and self.writes_suspended:
            events.append(NewEvent("storage_writes_resumed", {"used_bytes": used_bytes,
                                                              "limit_bytes": self.limit_bytes}))
        return events

    def active_buckets(self):
        """Names of the buckets that exist on the backend (or may, while being deleted)."""
        return sorted(n for n, s in self.buckets.items() if s in (ACTIVE, DELETING))

    def policy_buckets(self):
        """The buckets the storage's key may use: active ones and ones being created —
        another operation creating one at the same moment must not lose it when this one
        rewrites the key's policy — but none whose deletion was asked for."""
        return sorted(n for n, s in self.buckets.items() if s in (ACTIVE, CREATING))


# -- usage queries ---------------------------------------------------------------------------

METRICS = {"storage": "bytes", "bandwidth": "bytes"}
STEP_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
STEP_MIN, STEP_MAX = 60, 31 * 86400
MAX_POINTS = 2000
DEFAULT_PERIOD = 86400
DEFAULT_STEP = 300


def _moment(value, field_name):
    """Unix seconds from a number or an ISO-8601 date/time (UTC when no offset is given)."""
    from datetime import datetime

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass  # not unix seconds: try an ISO-8601 moment
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationFailed("The period is invalid.", fields={
            field_name: ["An ISO-8601 date/time (2026-11-24T10:00:00Z) or unix seconds."]})
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _step(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", str(value))
        if not match:
            raise ValidationFailed("The step is invalid.", fields={"step": ["Seconds, or a number with s, m, h or d (5m, 1h)."]})
        seconds = float(int(match.group(1)) * STEP_UNITS[match.group(2) or "s"])
    if not STEP_MIN <= seconds <= STEP_MAX:
        raise ValidationFailed("The step is invalid.", fields={"step": [f"From {STEP_MIN} s to 31 days."]})
    return int(seconds)


def usage_window(metric, start, end, step, now):
    """Check a usage query; returns ``(metric, start, end, step)`` in unix seconds, ``start``
    aligned down to a multiple of ``step`` (so points stay put as the period moves)."""
    if metric not in METRICS:
        raise ValidationFailed("Unknown metric.", fields={"metric": [f"One of {', '.join(METRICS)}."]})
    end = now if end in (None, "") else _moment(end, "to")
    start = end - DEFAULT_PERIOD if start in (None, "") else _moment(start, "from")
    step = DEFAULT_STEP if step in (None, "") else _step(step)
    if start >= end:
        raise ValidationFailed("The period is empty.", fields={"from": ["Must be before to."]})
    start = start // step * step
    if (end - start) / step > MAX_POINTS:
        raise ValidationFailed("Too many points.", fields={
            "step": [f"At most {MAX_POINTS} points per period: choose a larger step or a shorter period."]})
    return metric, start, end, step


def aggregate_usage(metric, samples, start, step):
    """Points of a chart from ``samples`` (``(at, used_bytes, bytes_in, bytes_out)`` in time
    order): per step, storage is the largest used bytes seen, bandwidth the sum of the bytes
    in and out measured (steps without a sample, or without a measurement, have no point)."""
    steps = {}
    for at, used, bytes_in, bytes_out in samples:
        slot = int(start + (at - start) // step * step)
        if metric == "storage":
            steps[slot] = max(steps.get(slot, 0), used)
        elif bytes_in is not None or bytes_out is not None:
            got = steps.setdefault(slot, [0, 0])
            got[0] += bytes_in or 0
            got[1] += bytes_out or 0
    if metric == "storage":
        return {"points": [[slot, value] for slot, value in sorted(steps.items())]}
    ordered = sorted(steps.items())
    return {"points": [[slot, i + o] for slot, (i, o) in ordered],
            "in": [[slot, i] for slot, (i, _) in ordered],
            "out": [[slot, o] for slot, (_, o) in ordered]}
