"""Fixtures for S3-compatible endpoints, owned by the storage tests.

``s3_cluster`` (module-scoped) starts one S3 stand-in per location (NL, US) as a real
subprocess on a free port — ``python -m deploy.standins.s3``: moto's server mode with IAM
authorization enforced, the administrator ``AKIAPANELDEVADMIN001`` and the traffic meter —
waits until each answers, and stops them at the end. The handle gives the storage service's
``S3_ENDPOINTS`` setting and boto3 clients: ``admin(location, "s3"|"iam")`` and
``client(credentials)`` for a storage's credentials as the API returns them.
"""

import sys
import time
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config

from tests.support import ChildProcess, free_port

LOCATIONS = ("NL", "US")
ADMIN_KEY = "AKIAPANELDEVADMIN001"
ADMIN_SECRET = "panel-test-admin-secret"
START_TIMEOUT = 30.0
CLIENT_CONFIG = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=5,
                       read_timeout=10)


class S3Cluster:
    def __init__(self, endpoints):
        self.endpoints = endpoints  # location -> URL

    @property
    def setting(self):
        """The storage service's ``S3_ENDPOINTS`` value."""
        return ",".join(f"{location}={url}" for location, url in self.endpoints.items())

    @property
    def config(self):
        return {"S3_ENDPOINTS": self.setting, "S3_ADMIN_ACCESS_KEY": ADMIN_KEY, "S3_ADMIN_SECRET_KEY": ADMIN_SECRET,
                "S3_TIMEOUT_SECONDS": 5}

    def admin(self, location, service="s3"):
        return boto3.client(service, endpoint_url=self.endpoints[location], aws_access_key_id=ADMIN_KEY,
                            aws_secret_access_key=ADMIN_SECRET, region_name="us-east-1", config=CLIENT_CONFIG)

    @staticmethod
    def client(credentials):
        """An S3 client configured only from what ``GET …/credentials`` answered."""
        return boto3.client("s3", endpoint_url=credentials["endpoints"][0], aws_access_key_id=credentials["access_key"],
                            aws_secret_access_key=credentials["secret_key"], region_name=credentials["region"],
                            config=CLIENT_CONFIG)

    def meter(self, location):
        return requests.get(f"{self.endpoints[location]}/_meter/usage", auth=(ADMIN_KEY, ADMIN_SECRET),
                            timeout=5).json()


def _answers(url):
    try:
        return requests.get(f"{url}/_meter/usage", auth=(ADMIN_KEY, ADMIN_SECRET), timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def s3_cluster(tmp_path_factory):
    directory = Path(tmp_path_factory.mktemp("s3"))
    endpoints, processes = {}, []
    try:
        for location in LOCATIONS:
            port = free_port()
            endpoints[location] = f"http://127.0.0.1:{port}"
            processes.append(ChildProcess(
                f"s3-{location}", [sys.executable, "-m", "deploy.standins.s3", "--port", str(port)],
                directory / f"s3-{location.lower()}.log",
                env={"S3_ADMIN_ACCESS_KEY": ADMIN_KEY, "S3_ADMIN_SECRET_KEY": ADMIN_SECRET}))
        deadline = time.monotonic() + START_TIMEOUT
        for process, url in zip(processes, endpoints.values()):
            while not _answers(url):
                process.check_alive()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{process.name} did not answer within {START_TIMEOUT}s:\n{process.log_text()}")
                time.sleep(0.1)
        yield S3Cluster(endpoints)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.stop()
