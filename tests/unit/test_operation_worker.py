"""``operation_worker``: the one entrypoint shape that carries out a service's operations."""

from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

from common.messaging import ReliableEventHandler, operation_worker


class Lab:
    def __init__(self):
        self.carried_out = []

    @operation_worker("lab", "server.")
    def carry_out(self, operation):
        self.carried_out.append(operation["operation_id"])
        return operation["kind"]


def requested(operation_id, kind):
    return {"type": "operation_requested", "data": {"operation_id": operation_id, "kind": kind}}


def test_it_carries_out_the_operations_of_its_kind_and_acks_the_others_untouched():
    lab = Lab()

    assert lab.carry_out(requested("op-1", "server.reboot")) == "server.reboot"
    assert lab.carry_out(requested("op-2", "storage.delete")) is None

    assert lab.carried_out == ["op-1"]


def test_it_is_a_reliable_handler_of_the_services_own_operation_requested():
    (entrypoint,) = getattr(Lab.carry_out, ENTRYPOINT_EXTENSIONS_ATTR)

    assert isinstance(entrypoint, ReliableEventHandler)
    assert (entrypoint.source_service, entrypoint.event_type) == ("lab", "operation_requested")
    # The queue keeps the name the hand-written handlers had, so a deploy drains the old one.
    assert ReliableEventHandler.queue_names("lab", "operation_requested", "lab", "carry_out")[0] == \
        "evt-lab-operation_requested--lab.carry_out"


def test_a_container_refuses_another_nameko_than_the_one_its_internals_were_read_against():
    import pytest

    from common.container import NAMEKO_VERSION, check_nameko_version

    check_nameko_version()  # the pinned one is installed
    with pytest.raises(RuntimeError, match=f"nameko 2.15.0 is installed.*nameko {NAMEKO_VERSION}"):
        check_nameko_version("2.15.0")
