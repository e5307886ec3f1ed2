"""The ports of a stack beside the default one (tests, benchmarks) never overlap: the
gateway, the metrics block and the stand-ins' block come from one free block, and the
replicas' gateways avoid all three (a gateway once found a stand-in on its port)."""

from common.config import SERVICES
from deploy.devstack import STANDIN_PORT_COUNT, Settings, free_port_block, free_stack_ports


def test_the_three_blocks_of_a_stack_are_disjoint():
    for _ in range(50):
        ports = free_stack_ports()
        gateway = {int(ports["GATEWAY_PORT"])}
        metrics = set(range(int(ports["METRICS_BASE_PORT"]), int(ports["METRICS_BASE_PORT"]) + len(SERVICES) + 1))
        standins = set(range(int(ports["STANDINS_BASE_PORT"]), int(ports["STANDINS_BASE_PORT"]) + STANDIN_PORT_COUNT))
        assert not gateway & metrics and not gateway & standins and not metrics & standins


def test_a_block_never_holds_a_port_given_out_already():
    taken = set(range(20000, 32000, 2))  # every other port below the ephemeral range
    base = free_port_block(1, avoid=taken)
    assert base not in taken


def test_the_replicas_gateways_avoid_the_stacks_other_ports():
    for _ in range(20):
        ports = free_stack_ports()
        settings = Settings({**ports, "PANEL_REPLICAS": "2"})
        others = {settings.gateway_port, *range(settings.metrics_base_port, settings.metrics_base_port + len(SERVICES) + 1),
                  *range(settings.standins_base_port, settings.standins_base_port + STANDIN_PORT_COUNT)}
        assert len(settings.gateway_ports) == 2 and not set(settings.gateway_ports) & others
