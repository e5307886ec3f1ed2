"""S3-compatible stand-in of one storage location: moto's server mode with IAM authorization
enforced, an administrator it trusts, and a traffic meter.

    python -m deploy.standins.s3 --port 9208 [--host 127.0.0.1]

One process, one port, three things:

- **S3 and IAM APIs** (moto 5, in-process). Unlike a plain ``python -m moto.server``, every
  request must be signed (SigV4) with a key of an IAM user that moto knows, and is allowed
  only when that user's IAM policies allow the action on the resource (moto's
  ``INITIAL_NO_AUTH_ACTION_COUNT`` set to 0, i.e. from the first request on). So one
  customer's key really cannot read another customer's bucket here.
- **An administrator** created before the first request: IAM user ``panel-admin`` with an
  allow-everything policy and the access key ``S3_ADMIN_ACCESS_KEY`` /
  ``S3_ADMIN_SECRET_KEY`` (dev defaults below; the storage service defaults to the same) —
  what ``radosgw-admin user create --uid=panel-admin --access-key=… --secret=… --caps=…``
  gives on a Ceph cluster.
- **A traffic meter**: every request's bytes in (its body, as sent) and bytes out (the
  response body) are counted per access key (from the SigV4 ``Authorization`` header or a
  presigned URL's ``X-Amz-Credential``; ``-`` for unsigned requests). ``GET /_meter/usage``
  (HTTP Basic auth with the administrator's key and secret; ``_`` cannot start a bucket name,
  so the path never shadows a bucket) answers the cumulative counters since the stand-in
  started: ``{"started_at", "keys": {"<access key>": {"bytes_in", "bytes_out",
  "requests"}}}``. The storage service's usage sampler reads it; on a Ceph cluster the RGW
  usage log (admin ops ``GET /admin/usage``) plays this part.

State lives in memory: a restart empties the buckets, the IAM users and the counters.
"""

import argparse
import base64
import json
import re
import sys
import threading
from datetime import UTC, datetime
from urllib.parse import unquote

from deploy.standins.base import same_secret, setting

ADMIN_USER = "panel-admin"
DEFAULT_ADMIN_ACCESS_KEY = "AKIAPANELDEVADMIN001"  # 20 characters A-Z0-9, as moto (and AWS) expect
DEFAULT_ADMIN_SECRET_KEY = "panel-dev-admin-secret-key"
METER_PATH = "/_meter/usage"
ADMIN_POLICY = {"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}

_CREDENTIAL = re.compile(r"Credential=([A-Za-z0-9]+)/")
_QUERY_CREDENTIAL = re.compile(r"(?:^|&)X-Amz-Credential=([A-Za-z0-9]+)(?:%2F|/)")
_QUERY_V2_KEY = re.compile(r"(?:^|&)AWSAccessKeyId=([A-Za-z0-9]+)")


def access_key_of(environ):
    """The access key a request is signed with, or ``-``."""
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match:
        return match.group(1)
    query = environ.get("QUERY_STRING", "")
    match = _QUERY_CREDENTIAL.search(query) or _QUERY_V2_KEY.search(unquote(query))
    return match.group(1) if match else "-"


class Meter:
    """Bytes in and out and requests per access key, since the process started."""

    def __init__(self):
        self._lock = threading.Lock()
        self._keys = {}
        self.started_at = datetime.now(UTC).isoformat()

    def add(self, key, bytes_in=0, bytes_out=0, requests=0):
        with self._lock:
            counters = self._keys.setdefault(key, {"bytes_in": 0, "bytes_out": 0, "requests": 0})
            counters["bytes_in"] += bytes_in
            counters["bytes_out"] += bytes_out
            counters["requests"] += requests

    def snapshot(self):
        with self._lock:
            return {"started_at": self.started_at, "keys": {k: dict(v) for k, v in self._keys.items()}}


class _CountingInput:
    """``wsgi.input`` that counts what the application reads (bodies without a length)."""

    def __init__(self, stream):
        self._stream = stream
        self.count = 0

    def read(self, *args):
        data = self._stream.read(*args)
        self.count += len(data)
        return data

    def readline(self, *args):
        data = self._stream.readline(*args)
        self.count += len(data)
        return data

    def __iter__(self):
        for line in self._stream:
            self.count += len(line)
            yield line


class MeteredApp:
    """WSGI middleware: the meter's own endpoint, and counting around everything else."""

    name = "s3"

    def __init__(self, app, meter, admin_key, admin_secret):
        self.app = app
        self.meter = meter
        self.admin_key = admin_key
        self.admin_secret = admin_secret

    def _meter_endpoint(self, environ, start_response):
        given = environ.get("HTTP_AUTHORIZATION", "")
        try:
            key, _, secret = base64.b64decode(given.removeprefix("Basic ")).decode().partition(":")
        except ValueError:
            key, secret = "", ""
        if not (given.startswith("Basic ") and same_secret(key, self.admin_key)
                and same_secret(secret, self.admin_secret)):
            start_response("401 Unauthorized", [("Content-Type", "application/json"),
                                                ("WWW-Authenticate", 'Basic realm="meter"')])
            return [b'{"error": "unauthorized"}']
        body = json.dumps(self.meter.snapshot()).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == METER_PATH:
            return self._meter_endpoint(environ, start_response)
        return self._metered(environ, start_response)

    def _metered(self, environ, start_response):
        key = access_key_of(environ)
        counting = _CountingInput(environ["wsgi.input"])
        environ["wsgi.input"] = counting
        declared = environ.get("CONTENT_LENGTH")
        out = 0
        try:
            for chunk in self.app(environ, start_response):
                out += len(chunk)
                yield chunk
        finally:
            bytes_in = int(declared) if declared and declared.isdigit() else counting.count
            self.meter.add(key, bytes_in=bytes_in, bytes_out=out, requests=1)


def bootstrap_admin(access_key, secret_key):
    """Create the administrator with the given key in moto's default account, then make
    moto authorize every request from now on."""
    from moto import settings
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    backend = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    backend.create_user("us-east-1", ADMIN_USER)
    backend.put_user_policy(ADMIN_USER, "administrator", json.dumps(ADMIN_POLICY))
    key = backend.create_access_key(ADMIN_USER)
    backend.access_keys.pop(key.physical_resource_id, None)
    key.access_key_id, key.secret_access_key = access_key, secret_key
    backend.access_keys[key.physical_resource_id] = key
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0


def build_app(access_key, secret_key):
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        create_backend_app,
    )

    bootstrap_admin(access_key, secret_key)
    return MeteredApp(DomainDispatcherApplication(create_backend_app), Meter(), access_key, secret_key)


def main(argv=None):
    import os

    from deploy.standins.base import serve

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9208)
    args = parser.parse_args(argv)
    access_key = setting("S3_ADMIN_ACCESS_KEY", DEFAULT_ADMIN_ACCESS_KEY)
    secret_key = setting("S3_ADMIN_SECRET_KEY", DEFAULT_ADMIN_SECRET_KEY)
    if not re.fullmatch(r"[A-Z0-9]{20}", access_key):
        parser.error("S3_ADMIN_ACCESS_KEY must be 20 characters A-Z and 0-9")
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = build_app(access_key, secret_key)
    serve(app, args.host, args.port,
          lambda port: f"s3 stand-in (moto, IAM enforced, metered) listening on http://{args.host}:{port}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
