"""The service container every panel process runs in (``SERVICE_CONTAINER_CLS`` in each
``deploy/config/*.yaml``; the tests' ``start_service`` sets it too).

It is nameko's ``ServiceContainer`` with a leaner worker lifecycle. ``_run_worker`` keeps
nameko's steps and their order — inject the dependencies, ``worker_setup``, call the
method, log an expected error as a warning and any other with its traceback,
``handle_result``, ``worker_result``, ``worker_teardown`` — and drops what nameko adds on
every call even when DEBUG logging is off: four timing context managers and a call-stack
debug line built eagerly (which also mints the worker's call id). That is ≈ 40–60 µs per
HTTP request at c=1 across the gateway and a service (bench/README.md, "Issue 11").
Durations are measured by ``common.metrics`` per entrypoint instead.

This module is also the one place that reaches into nameko's private internals (the
worker lifecycle above, the worker pool's semaphore for ``has_free_worker``). They are
written against one nameko version, pinned in pyproject.toml; a container refuses to start
on another (``check_nameko_version``) with a message saying what to re-check.
"""

import logging
import sys
from importlib import metadata

from nameko.containers import ServiceContainer

log = logging.getLogger("nameko.containers")  # where nameko logs worker errors

CONTAINER_CLASS = "common.container.PanelServiceContainer"


# The nameko release the private internals used here were read against.
NAMEKO_VERSION = "2.14.1"


def check_nameko_version(installed=None):
    """Raise with what to do when the installed nameko is not ``NAMEKO_VERSION``."""
    installed = installed or metadata.version("nameko")
    if installed != NAMEKO_VERSION:
        raise RuntimeError(
            f"nameko {installed} is installed, but common/container.py relies on private parts of "
            f"nameko {NAMEKO_VERSION} (ServiceContainer._run_worker and its steps, the worker "
            f"pool's semaphore): compare them with the new release, then update NAMEKO_VERSION "
            f"and the pin in pyproject.toml together")


def has_free_worker(container):
    """Whether ``container.spawn_worker`` would start a worker now instead of waiting for a
    slot: nameko has no public way to ask; the pool's semaphore knows (its balance counts
    greenthreads already waiting for a slot, ``GreenPool.free()`` does not)."""
    return container._worker_pool.sem.balance > 0


class PanelServiceContainer(ServiceContainer):
    def __init__(self, *args, **kwargs):
        check_nameko_version()
        super().__init__(*args, **kwargs)

    def _run_worker(self, worker_ctx, handle_result):
        self._inject_dependencies(worker_ctx)
        self._worker_setup(worker_ctx)
        result = exc_info = None
        method = getattr(worker_ctx.service, worker_ctx.entrypoint.method_name)
        try:
            result = method(*worker_ctx.args, **worker_ctx.kwargs)
        except Exception as exc:
            if isinstance(exc, worker_ctx.entrypoint.expected_exceptions):
                log.warning("(expected) error handling worker %s: %s", worker_ctx, exc, exc_info=True)
            else:
                log.exception("error handling worker %s: %s", worker_ctx, exc)
            exc_info = sys.exc_info()
        if handle_result is not None:
            result, exc_info = handle_result(worker_ctx, result, exc_info)
        self._worker_result(worker_ctx, result, exc_info)
        # Break the traceback's reference cycle now rather than at the next gc sweep.
        del exc_info
        self._worker_teardown(worker_ctx)
