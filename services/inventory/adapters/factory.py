"""Builds a server's ``RedfishBmc`` from its stored BMC binding and the inventory service's
nameko config (``deploy/config/inventory.yaml`` values, each overridable from the environment).

A binding is ``{"endpoint": "http://127.0.0.1:9300", "system_id": "<Redfish system id>"}``.
Config keys and defaults: ``BMC_USERNAME`` and ``BMC_PASSWORD`` (no default: unset, every
BMC call fails with "has no credentials configured" and the service logs it at start;
with ``DEV_CREDENTIALS`` true — the dev stack and the tests only — the BMC stand-in's
published dev-admin / dev-password stand in), ``BMC_TIMEOUT_SECONDS`` 10 (each request),
``BMC_VERIFY_TLS`` true (false, or the path of a CA bundle, for BMCs with certificates of
their own).
"""

from common.config import Credentials, MissingCredentials
from services.inventory.adapters import BmcError
from services.inventory.adapters.bmc import RedfishBmc

DEFAULTS = {
    "BMC_TIMEOUT_SECONDS": 10,
    "BMC_VERIFY_TLS": True,
}
# The stand-in's dev credentials (deploy/standins/bmc.py); real ones come from the environment.
DEV_SECRETS = {
    "BMC_USERNAME": "dev-admin",
    "BMC_PASSWORD": "dev-password",
}


def _get(config, key):
    value = config.get(key)
    return DEFAULTS[key] if value is None else value


def bmc_credentials(config):
    """``(username, password)`` for the BMCs; ``MissingCredentials`` when unset (and
    ``DEV_CREDENTIALS`` is off)."""
    secret = Credentials(config, DEV_SECRETS, "inventory")
    credentials = secret("BMC_USERNAME"), secret("BMC_PASSWORD")
    secret.check()
    return credentials


def _verify(value):
    """``BMC_VERIFY_TLS``: a boolean (YAML or environment spelling) or a CA bundle path."""
    if isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off", ""):
        return False
    return text


def bmc_for(server_bmc, config, observe=None):
    """The ``RedfishBmc`` of one server: ``server_bmc`` is its stored binding,
    ``observe(adapter, provider, outcome, seconds)`` is told of every call. ValueError for a
    binding without an endpoint or a system id; ``BmcError`` when no credentials are set."""
    if not isinstance(server_bmc, dict):
        raise ValueError("a BMC binding is a mapping with an endpoint and a system_id")
    missing = [key for key in ("endpoint", "system_id") if not server_bmc.get(key)]
    if missing:
        raise ValueError(f"the BMC binding has no {' and no '.join(missing)}")
    try:
        username, password = bmc_credentials(config)
    except MissingCredentials:
        raise BmcError(server_bmc["endpoint"], "has no credentials configured") from None
    return RedfishBmc(
        server_bmc["endpoint"], server_bmc["system_id"], username=username, password=password,
        timeout=float(_get(config, "BMC_TIMEOUT_SECONDS")), observe=observe,
        verify=_verify(_get(config, "BMC_VERIFY_TLS")),
    )
