"""Builds the support service's blob store from its nameko config
(``deploy/config/support.yaml``; every value overridable from the environment).

``SUPPORT_BLOB_BACKEND``: ``filesystem`` (default) or ``s3``.
- filesystem: ``SUPPORT_BLOB_DIR`` (default ``var/support-attachments``, relative to the
  working directory like the default database).
- s3: ``SUPPORT_S3_BUCKET`` (required), ``SUPPORT_S3_ENDPOINT`` (empty: AWS),
  ``SUPPORT_S3_REGION``, ``SUPPORT_S3_PREFIX``, ``SUPPORT_S3_ACCESS_KEY`` and
  ``SUPPORT_S3_SECRET_KEY`` (from the environment only; empty: boto3's own chain),
  ``SUPPORT_S3_CREATE_BUCKET`` (create it at start when missing; development).
``SUPPORT_BLOB_TIMEOUT_SECONDS`` (10) bounds every call.

The returned store reports each call to ``observe(adapter, provider, outcome, seconds)``.
"""

from common.outside import observed, time_limit
from services.support.adapters import BlobNotFound, BlobStoreError

DEFAULT_DIR = "var/support-attachments"
METHODS = ("put", "get", "size", "delete")


def _flag(value):
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class ObservedBlobStore:
    """Wraps a store: a time limit per call and the adapter metrics."""

    def __init__(self, store, timeout, observe=None):
        self.store = store
        self.timeout = timeout
        self.observe = observe
        self.name = store.name

    def _call(self, method, *args):
        def attempt():
            with time_limit(self.timeout, lambda: BlobStoreError(f"{self.name} {method} timed out", timed_out=True)):
                try:
                    return getattr(self.store, method)(*args)
                except BlobNotFound as missing:
                    return missing  # an answer, not a failure of the store

        result = observed(self.observe, "blobstore", self.name, attempt, BlobStoreError)
        if isinstance(result, BlobNotFound):
            raise result
        return result

    def put(self, key, data, content_type=None):
        return self._call("put", key, data, content_type)

    def get(self, key):
        return self._call("get", key)

    def size(self, key):
        return self._call("size", key)

    def delete(self, key):
        return self._call("delete", key)

    def keys_older_than(self, cutoff):
        return list(self.store.keys_older_than(cutoff))


def build_blob_store(config, observe=None):
    backend = str(config.get("SUPPORT_BLOB_BACKEND") or "filesystem").lower()
    timeout = float(config.get("SUPPORT_BLOB_TIMEOUT_SECONDS") or 10)
    if backend == "filesystem":
        from services.support.adapters.filesystem import FilesystemBlobStore

        store = FilesystemBlobStore(config.get("SUPPORT_BLOB_DIR") or DEFAULT_DIR)
    elif backend == "s3":
        from services.support.adapters.s3 import S3BlobStore

        bucket = config.get("SUPPORT_S3_BUCKET")
        if not bucket:
            raise ValueError("SUPPORT_BLOB_BACKEND=s3 needs SUPPORT_S3_BUCKET")
        store = S3BlobStore(
            bucket, endpoint_url=config.get("SUPPORT_S3_ENDPOINT"), region=config.get("SUPPORT_S3_REGION"),
            access_key=config.get("SUPPORT_S3_ACCESS_KEY"), secret_key=config.get("SUPPORT_S3_SECRET_KEY"),
            prefix=config.get("SUPPORT_S3_PREFIX") or "", timeout=timeout,
            create_bucket=_flag(config.get("SUPPORT_S3_CREATE_BUCKET", False)))
    else:
        raise ValueError(f"unknown SUPPORT_BLOB_BACKEND {backend!r} (filesystem or s3)")
    return ObservedBlobStore(store, timeout, observe)
