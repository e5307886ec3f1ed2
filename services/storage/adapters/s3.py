"""One location's S3-compatible cluster, through its real APIs with boto3.

``S3Backend(location, endpoint, …)`` administers the cluster with the administrator's key:

- **IAM API** — one IAM user per storage (``panel-<s3uid>``), one access key at a time
  (``create_access_key`` / ``delete_access_key``), and two inline policies on that user:
  ``panel-storage`` allows ``s3:*`` on the storage's own buckets and their objects, and
  nothing else (no ``ListAllMyBuckets``: another customer's bucket names stay unknown; no
  bucket creation, deletion or policy changes: those go through the panel);
  ``panel-quota``, present only while the storage is full, denies every write (PutObject,
  multipart uploads, copies). An explicit Deny wins over any Allow in IAM evaluation.
- **S3 API** — buckets are created and deleted by the administrator (forced deletion first
  removes every object version and aborts unfinished multipart uploads); the bytes stored
  in a bucket are summed from a listing.
- **Traffic** — ``traffic(keys)``: cumulative bytes in/out of the given access keys since the
  meter started, from the stand-in's ``GET /_meter/usage``; None when the cluster does not
  report traffic (then nothing is recorded — never an estimate).

Bucket names are the customer's own, unchanged, in the location's one namespace (as on AWS,
and on an RGW without tenants): a name in use by anyone is ``BucketTaken``.

Time limits: boto3's connect/read time-outs are ``timeout`` seconds, with one retry for
throttling and 5xx answers (botocore's standard mode, 2 attempts); under eventlet a whole
call is bounded by 3 × ``timeout`` as well (common.outside.time_limit).
"""

import json
import logging

import boto3
import requests
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    ReadTimeoutError,
)

from common.outside import observed, time_limit
from services.storage.adapters import (
    BackendError,
    BackendUnavailable,
    BucketNotEmpty,
    BucketTaken,
)

log = logging.getLogger(__name__)

ADAPTER = "s3"
ACCESS_POLICY = "panel-storage"
QUOTA_POLICY = "panel-quota"
METER_PATH = "/_meter/usage"
# Bucket-level changes customers make through the panel only (so its view stays true).
BUCKET_ADMIN_ACTIONS = ["s3:CreateBucket", "s3:DeleteBucket", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy",
                        "s3:PutBucketAcl", "s3:PutBucketOwnershipControls"]
WRITE_ACTIONS = ["s3:PutObject*", "s3:CreateMultipartUpload", "s3:UploadPart*", "s3:CompleteMultipartUpload",
                 "s3:CopyObject", "s3:RestoreObject"]


def access_policy(buckets):
    """The ``panel-storage`` policy document for a storage holding ``buckets``."""
    statements = [{"Sid": "PanelManagesBuckets", "Effect": "Deny", "Action": BUCKET_ADMIN_ACTIONS, "Resource": "*"}]
    if buckets:  # an Allow with no Resource would allow everything: leave it out instead
        resources = [arn for name in sorted(buckets) for arn in (f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*")]
        statements.append({"Sid": "OwnBuckets", "Effect": "Allow", "Action": "s3:*", "Resource": resources})
    return {"Version": "2012-10-17", "Statement": statements}


def quota_policy():
    """The ``panel-quota`` policy document: no writes while the storage is full."""
    return {"Version": "2012-10-17",
            "Statement": [{"Sid": "StorageFull", "Effect": "Deny", "Action": WRITE_ACTIONS, "Resource": "*"}]}


def _code(error):
    return error.response.get("Error", {}).get("Code", "")


class S3Backend:
    """The cluster of ``location``, administered at ``endpoint``; customers are given
    ``public_endpoint``."""

    def __init__(self, location, endpoint, *, public_endpoint=None, region="us-east-1", access_key, secret_key,
                 timeout=10.0, metered=True, observe=None):
        self.location = location
        self.endpoint = endpoint.rstrip("/")
        self.public_endpoint = (public_endpoint or endpoint).rstrip("/")
        self.region = region
        self.timeout = float(timeout)
        self.metered = metered
        self.observe = observe
        self._admin = (access_key, secret_key)
        config = Config(connect_timeout=self.timeout, read_timeout=self.timeout,
                        retries={"mode": "standard", "max_attempts": 2}, s3={"addressing_style": "path"})
        session = boto3.session.Session(aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                                        region_name=region)
        self.s3 = session.client("s3", endpoint_url=self.endpoint, config=config)
        self.iam = session.client("iam", endpoint_url=self.endpoint, config=config)

    # -- plumbing --------------------------------------------------------------------------

    def _call(self, work):
        """Run ``work()`` with the time limit, as one observed adapter call, turning botocore's
        exceptions into ``BackendError``."""
        def attempt():
            try:
                with time_limit(self.timeout * 3, lambda: BackendUnavailable(
                        self.location, f"did not answer within {self.timeout * 3:g} s", timed_out=True)):
                    return work()
            except BackendError:
                raise
            except (ConnectTimeoutError, ReadTimeoutError):
                raise BackendUnavailable(self.location, f"did not answer within {self.timeout:g} s", timed_out=True)
            except ClientError as error:
                raise BackendError(self.location, f"refused the request ({_code(error) or 'error'})", code=_code(error))
            except BotoCoreError as error:
                raise BackendUnavailable(self.location, f"could not be reached ({type(error).__name__})")

        return observed(self.observe, ADAPTER, self.location, attempt, BackendError)

    # -- IAM: users, keys, policies --------------------------------------------------------

    def create_user(self, user_name, buckets=()):
        """The storage's IAM user with its access policy (already there: fine)."""
        def work():
            try:
                self.iam.create_user(UserName=user_name, Tags=[{"Key": "panel", "Value": "storage"}])
            except ClientError as error:
                if _code(error) != "EntityAlreadyExists":
                    raise
            self.iam.put_user_policy(UserName=user_name, PolicyName=ACCESS_POLICY,
                                     PolicyDocument=json.dumps(access_policy(buckets)))
        self._call(work)

    def create_access_key(self, user_name):
        """A new key of the user: ``(access_key_id, secret_access_key)``."""
        def work():
            key = self.iam.create_access_key(UserName=user_name)["AccessKey"]
            return key["AccessKeyId"], key["SecretAccessKey"]
        return self._call(work)

    def delete_access_key(self, user_name, access_key):
        def work():
            try:
                self.iam.delete_access_key(UserName=user_name, AccessKeyId=access_key)
            except ClientError as error:
                if _code(error) != "NoSuchEntity":
                    raise
        self._call(work)

    def delete_other_keys(self, user_name, keep):
        """Delete every key of the user but ``keep`` (the rotation's clean-up; repeatable)."""
        def work():
            for key in self.iam.list_access_keys(UserName=user_name)["AccessKeyMetadata"]:
                if key["AccessKeyId"] != keep:
                    self.iam.delete_access_key(UserName=user_name, AccessKeyId=key["AccessKeyId"])
        self._call(work)

    def allow_buckets(self, user_name, buckets):
        """Rewrite the user's access policy to exactly ``buckets``."""
        self._call(lambda: self.iam.put_user_policy(UserName=user_name, PolicyName=ACCESS_POLICY,
                                                    PolicyDocument=json.dumps(access_policy(buckets))))

    def suspend_writes(self, user_name):
        self._call(lambda: self.iam.put_user_policy(UserName=user_name, PolicyName=QUOTA_POLICY,
                                                    PolicyDocument=json.dumps(quota_policy())))

    def resume_writes(self, user_name):
        def work():
            try:
                self.iam.delete_user_policy(UserName=user_name, PolicyName=QUOTA_POLICY)
            except ClientError as error:
                if _code(error) != "NoSuchEntity":
                    raise
        self._call(work)

    def delete_user(self, user_name):
        """The user, its keys and its policies (already gone: fine)."""
        def work():
            try:
                for key in self.iam.list_access_keys(UserName=user_name)["AccessKeyMetadata"]:
                    self.iam.delete_access_key(UserName=user_name, AccessKeyId=key["AccessKeyId"])
                for name in self.iam.list_user_policies(UserName=user_name)["PolicyNames"]:
                    self.iam.delete_user_policy(UserName=user_name, PolicyName=name)
                self.iam.delete_user(UserName=user_name)
            except ClientError as error:
                if _code(error) != "NoSuchEntity":
                    raise
        self._call(work)

    def user_exists(self, user_name):
        def work():
            try:
                self.iam.get_user(UserName=user_name)
                return True
            except ClientError as error:
                if _code(error) == "NoSuchEntity":
                    return False
                raise
        return self._call(work)

    # -- S3: buckets -----------------------------------------------------------------------

    def create_bucket(self, name):
        """Create ``name``. One that the panel's administrator already owns counts as created:
        names are reserved per location in the storage service before this runs, so it can
        only be this very bucket, created by an earlier attempt that crashed before recording
        it (a redelivered operation adopts it)."""
        def work():
            try:
                self.s3.create_bucket(Bucket=name)
            except ClientError as error:
                if _code(error) == "BucketAlreadyOwnedByYou":
                    return
                if _code(error) == "BucketAlreadyExists":
                    raise BucketTaken(self.location, f"already has a bucket named {name}", code=_code(error))
                raise
        self._call(work)

    def bucket_exists(self, name):
        def work():
            try:
                self.s3.head_bucket(Bucket=name)
                return True
            except ClientError as error:
                if _code(error) in ("404", "NoSuchBucket", "NotFound"):
                    return False
                raise
        return self._call(work)

    def bucket_is_empty(self, name):
        def work():
            try:
                return self.s3.list_objects_v2(Bucket=name, MaxKeys=1).get("KeyCount", 0) == 0
            except ClientError as error:
                if _code(error) == "NoSuchBucket":
                    return True
                raise
        return self._call(work)

    def delete_bucket(self, name, force=False):
        """Delete the bucket (gone already: fine); with ``force`` its objects first.
        ``BucketNotEmpty`` without ``force`` when it holds objects."""
        def work():
            try:
                if force:
                    self._empty(name)
                self.s3.delete_bucket(Bucket=name)
            except ClientError as error:
                if _code(error) == "NoSuchBucket":
                    return
                if _code(error) == "BucketNotEmpty":
                    raise BucketNotEmpty(self.location, f"still holds objects in {name}", code="BucketNotEmpty")
                raise
        self._call(work)

    def _empty(self, name):
        for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=name):
            doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                      for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
            for start in range(0, len(doomed), 1000):
                self.s3.delete_objects(Bucket=name, Delete={"Objects": doomed[start:start + 1000], "Quiet": True})
        for page in self.s3.get_paginator("list_multipart_uploads").paginate(Bucket=name):
            for upload in page.get("Uploads", []):
                self.s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])

    def bucket_bytes(self, name):
        """Bytes stored in the bucket now (0 when it does not exist)."""
        def work():
            total = 0
            try:
                for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=name):
                    total += sum(item["Size"] for item in page.get("Contents", []))
            except ClientError as error:
                if _code(error) != "NoSuchBucket":
                    raise
            return total
        return self._call(work)

    # -- traffic ---------------------------------------------------------------------------

    def traffic(self, access_keys):
        """``{"epoch", "bytes_in", "bytes_out"}``: cumulative counters of ``access_keys``
        since the meter's ``epoch`` (its start); None when traffic is not measured here."""
        if not self.metered:
            return None

        def work():
            try:
                answer = requests.get(f"{self.endpoint}{METER_PATH}", auth=self._admin, timeout=self.timeout)
            except requests.RequestException as error:
                raise BackendUnavailable(self.location, f"meter could not be reached ({type(error).__name__})")
            if answer.status_code != 200 or not answer.headers.get("Content-Type", "").startswith("application/json"):
                return None  # no meter on this endpoint (plain moto, a cluster without one)
            body = answer.json()
            keys = body.get("keys", {})
            return {"epoch": body.get("started_at"),
                    "bytes_in": sum(keys.get(k, {}).get("bytes_in", 0) for k in access_keys),
                    "bytes_out": sum(keys.get(k, {}).get("bytes_out", 0) for k in access_keys)}
        return self._call(work)
