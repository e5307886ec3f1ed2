"""The panel's service container (``common.container``) runs a worker as nameko's does:
dependencies set up, told the result and torn down in order, expected errors logged as
warnings and others with their traceback, callers answered either way."""

import logging

import pytest
from nameko.extensions import DependencyProvider
from nameko.standalone.rpc import ServiceRpcProxy

from common.container import PanelServiceContainer
from common.errors import NotFound
from common.rpc import rpc

HOOKS = []


class Recorder(DependencyProvider):
    def worker_setup(self, worker_ctx):
        HOOKS.append(("setup", worker_ctx.entrypoint.method_name))

    def get_dependency(self, worker_ctx):
        return HOOKS

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        HOOKS.append(("result", result, exc_info[0].__name__ if exc_info else None))

    def worker_teardown(self, worker_ctx):
        HOOKS.append(("teardown", worker_ctx.entrypoint.method_name))


class Probe:
    name = "probe"
    hooks = Recorder()

    @rpc
    def echo(self, value):
        self.hooks.append(("call", value))
        return value

    @rpc
    def missing(self):
        raise NotFound("No such thing.")

    @rpc
    def broken(self):
        raise ValueError("a bug")


@pytest.fixture
def probe(start_service, amqp_uri):
    HOOKS.clear()
    container = start_service(Probe)
    with ServiceRpcProxy("probe", {"AMQP_URI": amqp_uri}) as proxy:
        yield container, proxy


def test_services_run_in_the_panel_container(probe):
    container, _ = probe
    assert type(container) is PanelServiceContainer


def test_a_worker_sets_up_calls_reports_and_tears_down_in_order(probe):
    _, proxy = probe
    assert proxy.echo({"n": 1}) == {"n": 1}
    assert HOOKS == [("setup", "echo"), ("call", {"n": 1}), ("result", {"n": 1}, None), ("teardown", "echo")]


def test_errors_reach_the_caller_and_the_log_as_nameko_logs_them(probe, caplog):
    _, proxy = probe
    caplog.set_level(logging.WARNING, logger="nameko.containers")
    with pytest.raises(Exception) as expected:
        proxy.missing()
    assert "No such thing." in str(expected.value)
    with pytest.raises(Exception) as unexpected:
        proxy.broken()
    assert "a bug" in str(unexpected.value)

    records = [(r.levelname, r.getMessage(), bool(r.exc_info)) for r in caplog.records
               if r.name == "nameko.containers"]
    assert any(level == "WARNING" and tb and message.startswith(
        "(expected) error handling worker <WorkerContext [probe.missing]") for level, message, tb in records)
    assert any(level == "ERROR" and tb and message.startswith(
        "error handling worker <WorkerContext [probe.broken]") for level, message, tb in records)
    assert ("result", None, "NotFound") in HOOKS and ("result", None, "ValueError") in HOOKS
    assert HOOKS[-1] == ("teardown", "broken")
