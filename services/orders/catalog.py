"""The catalog: offers read from a data file, with categories derived from their hardware.

Nothing here is typed by hand per offer: an offer's categories follow from its CPU, GPU
and whether it is a virtual machine, so a new offer lands in the right groups by itself.

Instant (R-INST-2): ``all``; ``gpu`` — a GPU, dedicated or a virtual slice; ``vps`` — a
virtual machine; ``dedicated`` — a physical machine. (A virtual GPU machine is both ``gpu``
and ``vps``; a physical GPU server both ``gpu`` and ``dedicated``.)

Stock (R-STOCK-2/3): ``all``; ``1cpu`` / ``2cpu`` — the socket count, for servers without a
GPU only; ``amd-ryzen`` — AMD Ryzen (Threadripper included); ``amd-legacy`` — AMD before Zen
(Opteron, FX …); ``intel``; ``gpu``.

Each unit of an offer (a machine) has an id ``<offer>-<n>``, a Redfish system id and
addresses derived from it (``unit_system_id``, ``unit_addresses``), so that the BMC emulator
of the dev stack and this service agree without another file. Pure code: ``load_catalog``
is the only function that reads a file.
"""

import ipaddress
import uuid
from decimal import Decimal, InvalidOperation

import yaml

KINDS = ("instant", "stock")
CATEGORIES = {
    "instant": ("all", "gpu", "vps", "dedicated"),
    "stock": ("all", "1cpu", "2cpu", "amd-ryzen", "amd-legacy", "intel", "gpu"),
}
DEFAULT_DEPLOY_BUSINESS_DAYS = 1
# Where each location's catalog addresses come from (documentation ranges in development).
ADDRESS_POOLS = {"NL": "185.12.70.0/23", "US": "5.161.30.0/23", "DE": "88.198.40.0/23", "SG": "5.223.40.0/23"}
REQUIRED = ("id", "name", "location", "virtual", "cpu", "ram_gb", "disks", "price_month", "units")


class CatalogError(ValueError):
    """The data file is wrong; the message says which offer and field."""


def categories_of(kind, offer):
    """The categories an offer belongs to, derived from its hardware (module docstring)."""
    cpu, has_gpu = offer["cpu"], offer.get("gpu") is not None
    found = ["all"]
    if kind == "instant":
        if has_gpu:
            found.append("gpu")
        found.append("vps" if offer["virtual"] else "dedicated")
        return found
    if not has_gpu and cpu["count"] in (1, 2):
        found.append(f"{cpu['count']}cpu")
    vendor, family = cpu["vendor"].lower(), cpu.get("family", "").lower()
    if vendor == "amd":
        if family.startswith("ryzen"):
            found.append("amd-ryzen")
        elif not cpu.get("microarchitecture", "").lower().startswith("zen"):
            found.append("amd-legacy")
    if vendor == "intel":
        found.append("intel")
    if has_gpu:
        found.append("gpu")
    return found


def primary_category(kind, categories):
    """The one category an offer is shown under: the most specific it has."""
    order = ("gpu", "vps", "dedicated") if kind == "instant" else ("gpu", "amd-ryzen", "amd-legacy", "intel",
                                                                   "1cpu", "2cpu")
    return next((c for c in order if c in categories), "all")


def unit_system_id(unit_id):
    """The Redfish system id of a catalog unit (stable across restarts)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"hostpanel-unit-{unit_id}"))


def describe_cpu(cpu):
    if cpu.get("vcpus"):
        return f"{cpu['vcpus']} vCPU ({cpu['vendor']} {cpu['model']})"
    return f"{cpu['count']}× {cpu['vendor']} {cpu['model']} ({cpu['cores']} cores)"


def describe_gpu(gpu):
    if gpu is None:
        return None
    count = f"{gpu['count']}× " if gpu.get("count", 1) > 1 else ""
    return f"{count}{gpu['model']} ({gpu['mode']})"


def _check(kind, offer):
    where = f"{kind} offer {offer.get('id', '?')}"
    for name in REQUIRED:
        if name not in offer:
            raise CatalogError(f"{where}: {name} is missing")
    if offer["location"] not in ADDRESS_POOLS:
        raise CatalogError(f"{where}: location must be one of {', '.join(ADDRESS_POOLS)}")
    cpu = offer["cpu"]
    for name in ("vendor", "model", "count"):
        if name not in cpu:
            raise CatalogError(f"{where}: cpu.{name} is missing")
    if not (cpu.get("vcpus") or cpu.get("cores")):
        raise CatalogError(f"{where}: cpu.cores (or cpu.vcpus for a virtual machine) is missing")
    gpu = offer.get("gpu")
    if gpu is not None and gpu.get("mode") not in ("dedicated", "virtual"):
        raise CatalogError(f"{where}: gpu.mode must be dedicated or virtual")
    try:
        if Decimal(str(offer["price_month"])) <= 0:
            raise CatalogError(f"{where}: price_month must be positive")
    except InvalidOperation:
        raise CatalogError(f"{where}: price_month is not a number") from None
    if not isinstance(offer["units"], int) or offer["units"] < 0:
        raise CatalogError(f"{where}: units must be a whole number ≥ 0")


def parse_catalog(data):
    """``{offer_id: offer}`` from the data file's content, each offer with its ``kind``,
    ``categories``, ``category``, display strings and ``units`` (``[{"unit_id",
    "system_id", "ips"}]``)."""
    offers, next_address = {}, {}
    for kind in KINDS:
        for raw in data.get(kind) or ():
            _check(kind, raw)
            if raw["id"] in offers:
                raise CatalogError(f"offer id {raw['id']} appears twice")
            categories = categories_of(kind, raw)
            location = raw["location"]
            pool = ipaddress.ip_network(ADDRESS_POOLS[location])
            units = []
            for n in range(1, raw["units"] + 1):
                index = next_address.get(location, 1)
                next_address[location] = index + 1
                unit_id = f"{raw['id']}-{n}"
                units.append({"unit_id": unit_id, "system_id": unit_system_id(unit_id), "ips": [str(pool[index])]})
            offers[raw["id"]] = {
                "id": raw["id"], "kind": kind, "name": raw["name"], "location": location,
                "virtual": bool(raw["virtual"]), "categories": categories,
                "category": primary_category(kind, categories),
                "cpu": describe_cpu(raw["cpu"]), "cpu_detail": dict(raw["cpu"]),
                "ram_gb": raw["ram_gb"], "disk": " + ".join(raw["disks"]),
                "gpu": describe_gpu(raw.get("gpu")), "gpu_detail": raw.get("gpu"),
                "price_month": str(Decimal(str(raw["price_month"])).quantize(Decimal("0.01"))),
                "deploy_business_days": (raw.get("deploy_business_days", DEFAULT_DEPLOY_BUSINESS_DAYS)
                                         if kind == "stock" else 0),
                "units": units,
            }
    return offers


def hardware_of(offer):
    """The ``hardware`` a provisioned server carries (inventory's shape)."""
    cpu = offer["cpu_detail"]
    return {"cpu": f"{cpu['vendor']} {cpu['model']}", "cpu_count": cpu["count"], "ram_gb": offer["ram_gb"],
            "disks": offer["disk"].split(" + "), "gpu": offer["gpu"], "virtual": offer["virtual"]}


def load_catalog(path):
    """Read and check the data file (the one function here with I/O)."""
    with open(path) as handle:
        return parse_catalog(yaml.safe_load(handle) or {})
