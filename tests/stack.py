"""The whole development stack (``python -m deploy.devstack``, what ``make run`` starts) as a
child process of the tests, on a RabbitMQ vhost, a var/ folder and ports of its own.

``running_stack(var_dir, **settings)`` boots it with these extra settings (environment
variables of deploy/devstack.py, e.g. ``BMC_POWER_DELAY="2"``), waits for its
``stack.json``, yields that description plus ``process``, ``var_dir``, ``env`` and
``output`` (the file with the stack's own output), and stops it with SIGTERM at the end
(unless a test stopped it already); then its vhost is deleted. The e2e and browser suites
build their ``stack`` fixtures on it.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys

from bench.stack import die_with_parent
from common.config import REPO_ROOT
from deploy.devstack import free_stack_ports
from tests.conftest import temporary_vhost
from tests.support import wait_for

BOOT_TIMEOUT = 120
STOP_TIMEOUT = 90


def stack_env(var_dir, amqp_uri, **settings):
    """The environment of a stack on ``var_dir`` and ``amqp_uri``, on free ports."""
    return dict(
        os.environ, PANEL_VAR_DIR=str(var_dir), AMQP_URI=amqp_uri, STACK_READY_TIMEOUT=str(BOOT_TIMEOUT),
        **free_stack_ports(), **settings,
    )


@contextlib.contextmanager
def running_stack(var_dir, vhost_prefix="panel-stack", **settings):
    """Boot the stack, yield its description, stop it (see the module docstring)."""
    with temporary_vhost(vhost_prefix) as amqp_uri:
        env = stack_env(var_dir, amqp_uri, **settings)
        output_path = var_dir / "stack.out"
        output = open(output_path, "w")
        # The stack gets SIGTERM when the tests die, however they die (a pytest-timeout kill
        # included), and stops its children in order: no orphaned stack holds the ports.
        process = subprocess.Popen([sys.executable, "-m", "deploy.devstack"], cwd=REPO_ROOT, env=env,
                                   stdout=output, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        stack_file = var_dir / "stack.json"

        def booted():
            if process.poll() is not None:
                raise AssertionError(f"the stack exited early:\n{output_path.read_text()}")
            return stack_file.exists()

        try:
            wait_for(booted, timeout=BOOT_TIMEOUT + 10, interval=0.2, message="stack.json")
            info = json.loads(stack_file.read_text())
            info.update(process=process, var_dir=var_dir, env=env, output=output_path)
            yield info
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(STOP_TIMEOUT)
            output.close()
