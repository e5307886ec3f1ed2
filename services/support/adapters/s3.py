"""Attachments in an S3 bucket through boto3 (``SUPPORT_BLOB_BACKEND=s3``).

Objects are ``<prefix><key>``, private, with the stored content type. The client has
connect/read time-outs and a bounded number of retries (botocore's standard mode: safe
for these idempotent calls); credentials come from the environment only."""

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from services.support.adapters import BlobNotFound, BlobStore, BlobStoreError, check_key

MISSING = ("404", "NoSuchKey", "NotFound")


class S3BlobStore(BlobStore):
    name = "s3"

    def __init__(self, bucket, endpoint_url=None, region=None, access_key=None, secret_key=None, prefix="",
                 timeout=10.0, create_bucket=False):
        self.bucket = bucket
        self.prefix = prefix
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url or None, region_name=region or None,
            aws_access_key_id=access_key or None, aws_secret_access_key=secret_key or None,
            config=Config(connect_timeout=timeout, read_timeout=timeout,
                          retries={"max_attempts": 3, "mode": "standard"}, s3={"addressing_style": "path"}))
        if create_bucket:
            self._ensure_bucket()

    def _ensure_bucket(self):
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in MISSING:
                raise BlobStoreError(f"S3 bucket {self.bucket}: {error}")
            self.client.create_bucket(Bucket=self.bucket)

    def _name(self, key):
        return self.prefix + check_key(key)

    def put(self, key, data, content_type=None):
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._name(key), Body=data,
                                   ContentType=content_type or "application/octet-stream")
        except (BotoCoreError, ClientError) as error:
            raise BlobStoreError(f"S3 put failed: {type(error).__name__}")

    def get(self, key):
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._name(key))["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in MISSING:
                raise BlobNotFound(f"no blob {key}")
            raise BlobStoreError(f"S3 get failed: {type(error).__name__}")
        except BotoCoreError as error:
            raise BlobStoreError(f"S3 get failed: {type(error).__name__}")

    def size(self, key):
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._name(key))["ContentLength"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in MISSING:
                return None
            raise BlobStoreError(f"S3 head failed: {type(error).__name__}")
        except BotoCoreError as error:
            raise BlobStoreError(f"S3 head failed: {type(error).__name__}")

    def delete(self, key):
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._name(key))
        except (BotoCoreError, ClientError) as error:
            raise BlobStoreError(f"S3 delete failed: {type(error).__name__}")

    def keys_older_than(self, cutoff):
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
            for page in pages:
                for item in page.get("Contents", ()):
                    key = item["Key"][len(self.prefix):]
                    if item["LastModified"] < cutoff and "/" not in key:
                        yield key
        except (BotoCoreError, ClientError) as error:
            raise BlobStoreError(f"S3 list failed: {type(error).__name__}")
