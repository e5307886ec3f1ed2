"""The domain layer loads no I/O (issue 22): a service's domain module, the errors and the
aggregate base import neither nameko nor SQLAlchemy nor py-amqp, and importing ``common``
patches nothing; a service's schema and projections (the event store's layer) load
SQLAlchemy but no transport. Checked in a fresh interpreter (this test process has them all
loaded)."""

import ast
import json
import subprocess
import sys

import pytest

from common.config import REPO_ROOT, SERVICES

HEAVY = ("nameko", "sqlalchemy", "amqp", "kombu", "eventlet")


@pytest.mark.parametrize("module", [f"services.{name}.domain" for name in SERVICES]
                         + ["common.errors", "common.eventstore", "services.notify.webhook_rules"])
def test_a_domain_module_imports_no_transport_and_no_database(module):
    assert heavy_modules_loaded_by(module) == [], f"{module} loads them"


@pytest.mark.parametrize("module", [f"services.{name}.projections" for name in SERVICES]
                         + ["common.service_schema", "common.migrations", "gateway.database"])
def test_a_schema_module_imports_the_database_but_no_transport(module):
    assert heavy_modules_loaded_by(module) == ["sqlalchemy"]


def heavy_modules_loaded_by(module):
    probe = (f"import json, sys; import {module}; "
             f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))")
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return json.loads(loaded.stdout)


def test_errors_still_cross_rpc_typed_once_the_transport_is_loaded():
    from nameko.exceptions import registry

    import common.rpc  # noqa: F401 - the transport registers them
    from common.errors import REMOTE_ERRORS, NotFound

    assert NotFound in REMOTE_ERRORS
    assert all(registry[f"{cls.__module__}.{cls.__name__}"] is cls for cls in REMOTE_ERRORS)


def test_common_never_imports_the_gateway_or_a_service():
    """``common`` is the floor: the gateway and the services build on it, never the reverse —
    neither by an import statement nor by a module name handed to ``import_module``."""
    reaching_up = []
    for path in sorted((REPO_ROOT / "common").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                    "import_module", "__import__") and node.args:
                names = [ast.unparse(node.args[0]).strip("'\"f")]
            else:
                continue
            reaching_up += [f"{path.relative_to(REPO_ROOT)}: {name}" for name in names
                            if name.split(".")[0] in ("gateway", "services", "deploy", "bench", "hostctl")]
    assert reaching_up == []


def test_every_aggregate_keeps_the_stream_name_its_recorded_events_have():
    """Stream names are data: a renamed prefix would orphan every stream already written."""
    from services.auth.domain import ApiToken, Challenge, Throttle, User
    from services.billing.domain import Account, Invoice, Subscription, TopUp
    from services.inventory.domain import Server
    from services.orders.domain import Order, Stock
    from services.storage.domain import Storage
    from services.support.domain import Ticket

    names = {cls.__name__: cls.stream_of("k") for cls in (
        User, Challenge, Throttle, ApiToken, Account, TopUp, Subscription, Invoice, Server, Stock,
        Order, Storage, Ticket)}
    assert names == {
        "User": "user-k", "Challenge": "challenge-k", "Throttle": "throttle-k", "ApiToken": "apitoken-k",
        "Account": "account-k", "TopUp": "topup-k", "Subscription": "subscription-k",
        "Invoice": "invoice-k", "Server": "server-k", "Stock": "stock-k", "Order": "order-k",
        "Storage": "storage-k", "Ticket": "ticket-k",
    }
    assert Server("42").stream_id == "server-42"
