"""The fault loop on the whole stack (issue 20, ``bench/faults.py``): while customers keep
rebooting their servers and topping up — every command sent with an Idempotency-Key and
sent again when its answer is lost — each service and the gateway is killed with SIGKILL
once and RabbitMQ restarts once. Then nothing accepted is lost, nothing is done twice,
nothing is stuck, no 5xx but 503 was answered, every paid top-up is credited exactly once,
and every fault's accepted work finished after it cleared (the figures are printed)."""

import pytest

from bench.faults import print_report, run_fault_loop
from tests.stack import running_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("var"), vhost_prefix="panel-faults", BMC_POWER_DELAY="1") as info:
        yield info


@pytest.mark.timeout(1200)
def test_kills_and_a_broker_restart_lose_nothing_and_do_nothing_twice(stack, capsys):
    result = run_fault_loop(stack, seconds_per_fault=4.0)
    with capsys.disabled():
        print()
        print_report(result)
    assert result["kills"] == 8 and result["broker_restarts"] == 1
    assert result["accepted"] > 20
    assert result["lost"] == [] and result["stuck"] == [] and result["duplicated"] == []
    assert result["server_errors"] == {}
    assert result["topups_paid"] > 0 and result["credit_problems"] == []
    assert result["unrecovered"] == []
