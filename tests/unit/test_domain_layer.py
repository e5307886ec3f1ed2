"""The domain layer loads no I/O (issue 22): a service's domain module, the errors and the
aggregate base import neither nameko nor SQLAlchemy nor py-amqp, and importing ``common``
patches nothing. Checked in a fresh interpreter (this test process has them all loaded)."""

import json
import subprocess
import sys

import pytest

from common.config import REPO_ROOT, SERVICES

HEAVY = ("nameko", "sqlalchemy", "amqp", "kombu", "eventlet")


@pytest.mark.parametrize("module", [f"services.{name}.domain" for name in SERVICES]
                         + ["common.errors", "common.eventstore", "services.notify.webhook_rules"])
def test_a_domain_module_imports_no_transport_and_no_database(module):
    probe = (f"import json, sys; import {module}; "
             f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))")
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert json.loads(loaded.stdout) == [], f"{module} loads {loaded.stdout.strip()}"


def test_errors_still_cross_rpc_typed_once_the_transport_is_loaded():
    from nameko.exceptions import registry

    import common.rpc  # noqa: F401 - the transport registers them
    from common.errors import REMOTE_ERRORS, NotFound

    assert NotFound in REMOTE_ERRORS
    assert all(registry[f"{cls.__module__}.{cls.__name__}"] is cls for cls in REMOTE_ERRORS)
