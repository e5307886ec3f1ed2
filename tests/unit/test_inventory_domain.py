"""The server aggregate without I/O."""

import pytest

from common.errors import Conflict, ValidationFailed
from common.eventstore import NewEvent, RecordedEvent
from services.inventory.domain import Server


def recorded(events):
    return [RecordedEvent(position=i, stream_id="server-s1", version=i, type=e.type, data=e.data,
                          metadata={"event_id": str(i)}, recorded_at=None)
            for i, e in enumerate(events, start=1)]


def provisioned(**changes):
    values = dict(user_id="ann", number="SRV-10001", location="NL", plan="AX41", hardware={}, ips=["192.0.2.1"],
                  os="ubuntu-24.04", bmc={"endpoint": "http://bmc", "system_id": "x"}, paid_until="2026-12-31",
                  price_month="49.00")
    values.update(changes)
    return Server.provision("s1", **values)


def server_after(events):
    return Server.replay("s1", recorded(events))


def test_provisioning_validates_location_os_and_addresses():
    with pytest.raises(ValidationFailed) as raised:
        provisioned(location="XX", os="beos", ips=["not-an-ip"])
    assert set(raised.value.fields) == {"location", "os", "ips"}


def test_one_destructive_operation_at_a_time():
    history = provisioned()
    history += server_after(history).request_action("reboot", "op1")
    with pytest.raises(Conflict):
        server_after(history).request_action("power_off", "op2")
    history += server_after(history).finish_action("op1", succeeded=True, power="on")
    assert server_after(history).request_action("power_off", "op2")[0].data["action"] == "power_off"


def test_finishing_twice_records_nothing_the_second_time():
    history = provisioned()
    history += server_after(history).request_action("power_off", "op1")
    history += server_after(history).finish_action("op1", succeeded=True, power="off")
    assert server_after(history).power == "off"
    assert server_after(history).finish_action("op1", succeeded=True, power="off") == []


def test_a_failed_action_frees_the_server_without_changing_it():
    history = provisioned()
    history += server_after(history).request_action("reinstall", "op1", os="debian-12")
    history += server_after(history).finish_action("op1", succeeded=False)
    server = server_after(history)
    assert server.active_operation is None and server.os == "ubuntu-24.04"


def test_a_suspended_server_takes_no_actions_but_an_overdue_one_does():
    history = provisioned() + [NewEvent("server_suspended", {})]
    with pytest.raises(Conflict):
        server_after(history).request_action("reboot", "op1")
    history = provisioned()
    history += server_after(history).mark_overdue("invoice unpaid")
    assert server_after(history).status == "overdue"
    assert server_after(history).request_action("reboot", "op1")
    history += server_after(history).mark_paid("2027-01-31")
    assert server_after(history).status == "active"


def test_actions_and_reinstall_os_are_checked():
    server = server_after(provisioned())
    with pytest.raises(ValidationFailed) as raised:
        server.request_action("explode", "op1")
    assert "action" in raised.value.fields
    with pytest.raises(ValidationFailed) as raised:
        server.request_action("reinstall", "op1", os=None)
    assert "os" in raised.value.fields


def test_titles_name_the_server_and_the_os():
    server = server_after(provisioned())
    assert server.title_of("reboot") == "Reboot SRV-10001"
    assert server.title_of("reinstall", "debian-12") == "Reinstall SRV-10001 with Debian 12"


def test_tags_are_short_text():
    server = server_after(provisioned())
    assert server.retag("  web-1 ")[0].data == {"server_id": "s1", "user_id": "ann", "number": "SRV-10001", "tag": "web-1"}
    with pytest.raises(ValidationFailed):
        server.retag("x" * 65)
    assert server.retag(None) == []
