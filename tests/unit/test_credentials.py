"""Outside-world credentials fail closed: a service missing one does not start, unless the
dev stack's ``DEV_CREDENTIALS`` lets the stand-ins' published values stand in."""

import pytest

from common.config import Credentials, MissingCredentials, dev_credentials_allowed
from services.storage.adapters.factory import DEV_ADMIN_ACCESS_KEY, build_backends


@pytest.mark.parametrize("value, allowed", [
    (None, False), (False, False), ("false", False), ("", False), ("no", False),
    (True, True), ("true", True), ("1", True), ("Yes", True),
])
def test_dev_credentials_only_when_switched_on(value, allowed):
    assert dev_credentials_allowed({"DEV_CREDENTIALS": value}) is allowed


def test_credentials_name_every_missing_key_once_and_never_a_value():
    secret = Credentials({"A": "given", "B": "", "C": None, "D": 1234}, {"B": "dev-b", "C": "dev-c"}, "svc")
    assert secret("A") == "given"
    assert secret("D") == "1234"  # YAML turns an all-digit value into a number
    secret("B"), secret("C"), secret("B")
    with pytest.raises(MissingCredentials, match=r"^svc: B, C must be set") as refused:
        secret.check()
    assert "given" not in str(refused.value)


def test_storage_needs_an_admin_key_for_every_location(monkeypatch):
    endpoints = "NL=http://127.0.0.1:9208,US=http://127.0.0.1:9209"
    monkeypatch.delenv("S3_ADMIN_ACCESS_KEY_US", raising=False)
    with pytest.raises(MissingCredentials, match="S3_ADMIN_ACCESS_KEY, S3_ADMIN_SECRET_KEY"):
        build_backends({"S3_ENDPOINTS": endpoints})

    # Per-location keys come from the environment (locations vary, the YAML cannot list them).
    monkeypatch.setenv("S3_ADMIN_ACCESS_KEY_US", "us-access")
    monkeypatch.setenv("S3_ADMIN_SECRET_KEY_US", "us-secret")
    backends = build_backends({"S3_ENDPOINTS": endpoints, "S3_ADMIN_ACCESS_KEY": "all-access",
                               "S3_ADMIN_SECRET_KEY": "all-secret"})
    assert backends["US"]._admin == ("us-access", "us-secret")
    assert backends["NL"]._admin == ("all-access", "all-secret")

    dev = build_backends({"S3_ENDPOINTS": "NL=http://127.0.0.1:9208", "DEV_CREDENTIALS": "true"})
    assert dev["NL"]._admin[0] == DEV_ADMIN_ACCESS_KEY
