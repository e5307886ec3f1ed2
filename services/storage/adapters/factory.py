"""Builds the storage backends from the storage service's nameko config
(``deploy/config/storage.yaml`` values, each overridable from the environment).

Keys and defaults (the defaults work against the dev stand-in, deploy/standins/s3.py, and
against plain ``python -m moto.server``):

- ``S3_ENDPOINTS`` ``NL=http://127.0.0.1:9208,US=http://127.0.0.1:9209`` — ``LOC=url`` pairs,
  comma-separated: the locations storages can be created in, and the endpoint through which
  the service administers each (S3 API and IAM API on the same URL, as moto and an RGW with
  its IAM API serve them).
- ``S3_PUBLIC_ENDPOINTS`` (empty: the same as ``S3_ENDPOINTS``) — what customers are given
  to connect to, per location, when it differs (a public hostname in front of the cluster).
- ``S3_REGION`` ``us-east-1`` — the signing region of every location's endpoint.
- ``S3_ADMIN_ACCESS_KEY`` / ``S3_ADMIN_SECRET_KEY`` — the cluster administrator's key, from
  the environment; per location ``S3_ADMIN_ACCESS_KEY_<LOC>`` / ``S3_ADMIN_SECRET_KEY_<LOC>``
  (in the config or, as locations vary, straight from the environment) win when set. No
  default: a location left without a key stops the service from starting
  (``MissingCredentials``), unless ``DEV_CREDENTIALS`` is true (the dev stack and the tests
  only), when the dev stand-in's ``AKIAPANELDEVADMIN001`` / ``panel-dev-admin-secret-key``
  stand in.
- ``S3_TRAFFIC_SOURCE`` ``meter`` — where bandwidth comes from: ``meter`` (the stand-in's
  ``GET /_meter/usage``) or ``none`` (not measured: the bandwidth series stays empty).
- ``S3_TIMEOUT_SECONDS`` 10 — the time limit of each backend call.
"""

import os

from common.config import Credentials
from services.storage.adapters.s3 import S3Backend

DEFAULT_ENDPOINTS = "NL=http://127.0.0.1:9208,US=http://127.0.0.1:9209"
DEV_ADMIN_ACCESS_KEY = "AKIAPANELDEVADMIN001"
DEV_ADMIN_SECRET_KEY = "panel-dev-admin-secret-key"
DEV_SECRETS = {"S3_ADMIN_ACCESS_KEY": DEV_ADMIN_ACCESS_KEY, "S3_ADMIN_SECRET_KEY": DEV_ADMIN_SECRET_KEY}


def parse_endpoints(value, setting="S3_ENDPOINTS"):
    """``"NL=http://…,US=http://…"`` → ``{"NL": "http://…", "US": "http://…"}`` (order kept)."""
    endpoints = {}
    for item in str(value or "").split(","):
        item = item.strip()
        if not item:
            continue
        location, sep, url = item.partition("=")
        location, url = location.strip().upper(), url.strip().rstrip("/")
        if not sep or not location or not url.startswith(("http://", "https://")):
            raise ValueError(f"{setting}: expected LOC=http(s)://host:port pairs, got {item!r}")
        endpoints[location] = url
    return endpoints


def _setting(config, key, default):
    value = config.get(key)
    return default if value is None else str(value)


def build_backends(config, observe=None):
    """``{location: S3Backend}`` for every location of ``S3_ENDPOINTS``."""
    endpoints = parse_endpoints(_setting(config, "S3_ENDPOINTS", DEFAULT_ENDPOINTS))
    public = parse_endpoints(config.get("S3_PUBLIC_ENDPOINTS") or "", "S3_PUBLIC_ENDPOINTS")
    region = _setting(config, "S3_REGION", "us-east-1") or "us-east-1"
    timeout = float(config.get("S3_TIMEOUT_SECONDS") or 10)
    traffic = _setting(config, "S3_TRAFFIC_SOURCE", "meter")
    if traffic not in ("meter", "none"):
        raise ValueError("S3_TRAFFIC_SOURCE must be meter or none")
    secret = Credentials(config, DEV_SECRETS, "storage")
    backends = {}
    for location, url in endpoints.items():
        access_key = _location_key(config, "S3_ADMIN_ACCESS_KEY", location) or secret("S3_ADMIN_ACCESS_KEY")
        secret_key = _location_key(config, "S3_ADMIN_SECRET_KEY", location) or secret("S3_ADMIN_SECRET_KEY")
        backends[location] = S3Backend(
            location, url, public_endpoint=public.get(location, url), region=region,
            access_key=str(access_key), secret_key=str(secret_key), timeout=timeout,
            metered=traffic == "meter", observe=observe)
    secret.check()
    return backends


def _location_key(config, key, location):
    """``<key>_<LOC>`` from the config, else from the environment (None when unset)."""
    name = f"{key}_{location}"
    value = config.get(name) or os.environ.get(name)
    return str(value) if value else None
