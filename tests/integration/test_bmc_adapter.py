"""The BMC adapter (services/inventory/adapters/) against the Redfish stand-in,
``sushy-emulator --fake`` running as a process of its own (tests/bmc.py): real Redfish over
HTTP, no mocks. Each test takes servers of its own from the module's emulator."""

import socket
import time

import pytest

from services.inventory.adapters import BmcError, BmcUnavailable
from services.inventory.adapters.bmc import RedfishBmc
from services.inventory.adapters.factory import bmc_for
from tests.bmc import IMAGE_NAME
from tests.support import wait_for

# The stand-in shows a power change after tests.bmc.POWER_DELAY (2) seconds.
POWER_WAIT = 15


class Calls:
    """An ``observe`` hook that records what it is told."""

    def __init__(self):
        self.calls = []

    def __call__(self, adapter, provider, outcome, seconds):
        self.calls.append((adapter, provider, outcome, seconds))

    @property
    def outcomes(self):
        return [outcome for _, _, outcome, _ in self.calls]


class Servers:
    """Hands each test servers that no other test touched (the first system is left to
    tests that only read it or that fail before changing anything)."""

    def __init__(self, systems):
        self._free = list(systems[1:])

    def take(self):
        return self._free.pop(0)


@pytest.fixture(scope="module")
def servers(bmc):  # noqa: F811
    return Servers(bmc.systems)


def adapter_for(bmc, system, **kwargs):  # noqa: F811
    kwargs.setdefault("username", bmc.username)
    kwargs.setdefault("password", bmc.password)
    kwargs.setdefault("timeout", 5)
    kwargs.setdefault("poll_interval", 0.1)
    return RedfishBmc(bmc.endpoint, system["uuid"], **kwargs)


def emulator_reports(bmc, system, state):  # noqa: F811
    wait_for(lambda: bmc.power_state(system) == state, timeout=POWER_WAIT,
             message=f"the emulator to report {system['name']} {state}")


def power_off_first(bmc, system):  # noqa: F811
    adapter = adapter_for(bmc, system)
    adapter.power_off(force=True)
    adapter.wait_for_power("off", timeout=POWER_WAIT)
    assert bmc.power_state(system) == "Off"


# Power.

def test_power_state_is_what_the_emulator_reports(bmc, servers):  # noqa: F811
    system = servers.take()
    adapter = adapter_for(bmc, system)
    assert bmc.power_state(system) == "On"
    assert adapter.power_state() == "on"


def test_forced_power_off_then_on(bmc, servers):  # noqa: F811
    system = servers.take()
    adapter = adapter_for(bmc, system)

    assert adapter.power_off(force=True) == "ForceOff"
    assert adapter.wait_for_power("off", timeout=POWER_WAIT) == "off"
    assert bmc.power_state(system) == "Off"
    assert adapter.power_state() == "off"

    assert adapter.power_on() == "On"
    assert adapter.wait_for_power("on", timeout=POWER_WAIT) == "on"
    assert bmc.power_state(system) == "On"


def test_graceful_power_off(bmc, servers):  # noqa: F811
    system = servers.take()
    adapter = adapter_for(bmc, system)
    assert adapter.power_off() == "GracefulShutdown"
    emulator_reports(bmc, system, "Off")


def test_a_command_for_the_state_the_server_is_in_sends_nothing_and_keeps_it(bmc, servers):  # noqa: F811
    on, off = servers.take(), servers.take()
    power_off_first(bmc, off)
    resets_before = _resets_sent(bmc, on), _resets_sent(bmc, off)

    assert adapter_for(bmc, on).power_on() is None
    assert adapter_for(bmc, off).power_off() is None
    assert adapter_for(bmc, off).power_off(force=True) is None

    # The emulator's request log shows no new reset for either, so no change is pending.
    assert (_resets_sent(bmc, on), _resets_sent(bmc, off)) == resets_before
    assert bmc.power_state(on) == "On"
    assert bmc.power_state(off) == "Off"


def _resets_sent(bmc, system):  # noqa: F811
    """How many ComputerSystem.Reset requests for ``system`` the emulator has logged."""
    target = f"POST /redfish/v1/Systems/{system['uuid']}/Actions/ComputerSystem.Reset"
    return sum(target in line for line in bmc.log_text().splitlines())


def test_reboot_restarts_a_running_server(bmc, servers):  # noqa: F811
    graceful, forced = servers.take(), servers.take()

    assert adapter_for(bmc, graceful).reboot() == "GracefulRestart"
    assert adapter_for(bmc, forced).reboot(force=True) == "ForceRestart"
    # The fake driver shows a restart as Off until it completes, then On.
    for system in (graceful, forced):
        assert bmc.power_state(system) == "Off"
    for system in (graceful, forced):
        emulator_reports(bmc, system, "On")
        assert adapter_for(bmc, system).power_state() == "on"


def test_reboot_powers_on_a_server_that_is_off(bmc, servers):  # noqa: F811
    system = servers.take()
    power_off_first(bmc, system)
    adapter = adapter_for(bmc, system)
    assert adapter.reboot() == "On"
    assert adapter.wait_for_power("on", timeout=POWER_WAIT) == "on"
    assert bmc.power_state(system) == "On"


def test_wait_for_power_gives_up_after_its_timeout(bmc, servers):  # noqa: F811
    system = servers.take()
    calls = Calls()
    adapter = adapter_for(bmc, system, observe=calls)
    started = time.monotonic()
    with pytest.raises(BmcUnavailable) as raised:
        adapter.wait_for_power("off", timeout=0.5)
    assert time.monotonic() - started < 3
    assert raised.value.timed_out
    assert str(raised.value) == "The server's management controller did not report the server as off within 0.5 s."
    assert calls.outcomes == ["timeout"]
    assert bmc.power_state(system) == "On"
    with pytest.raises(ValueError):
        adapter.wait_for_power("sideways")


# Reinstall.

def test_reinstall_inserts_the_image_sets_a_cd_boot_override_and_restarts(bmc, servers):  # noqa: F811
    system = servers.take()
    before = bmc.virtual_cd(system)
    assert before["Inserted"] is False and bmc.boot(system)["BootSourceOverrideTarget"] == "Hdd"

    done = adapter_for(bmc, system).reinstall(bmc.image_url)

    assert done == {
        "virtual_media": "Cd", "boot_override": "Cd", "boot_override_enabled": "Once",
        "reset": "ForceRestart",
    }
    cd = bmc.virtual_cd(system)
    assert cd["Inserted"] is True
    assert cd["Image"] == bmc.image_url
    assert cd["ImageName"] == IMAGE_NAME
    assert cd["WriteProtected"] is True
    # The emulator keeps the target; it ignores BootSourceOverrideEnabled (always "Continuous").
    assert bmc.boot(system)["BootSourceOverrideTarget"] == "Cd"
    assert bmc.power_state(system) == "Off"  # restarting
    emulator_reports(bmc, system, "On")


def test_reinstall_of_a_server_that_is_off_powers_it_on(bmc, servers):  # noqa: F811
    system = servers.take()
    power_off_first(bmc, system)
    adapter = adapter_for(bmc, system)

    assert adapter.reinstall(bmc.image_url)["reset"] == "On"

    assert bmc.virtual_cd(system)["Inserted"] is True
    assert bmc.boot(system)["BootSourceOverrideTarget"] == "Cd"
    assert adapter.wait_for_power("on", timeout=POWER_WAIT) == "on"


def test_reinstall_replaces_media_already_inserted(bmc, servers):  # noqa: F811
    system = servers.take()
    adapter = adapter_for(bmc, system)
    adapter.reinstall(f"{bmc.image_base_url}/rescue.iso")
    assert bmc.virtual_cd(system)["ImageName"] == "rescue.iso"

    adapter.reinstall(bmc.image_url)

    cd = bmc.virtual_cd(system)
    assert (cd["Inserted"], cd["Image"], cd["ImageName"]) == (True, bmc.image_url, IMAGE_NAME)
    emulator_reports(bmc, system, "On")


def test_reinstall_with_an_image_the_bmc_cannot_fetch_fails_and_leaves_the_server_alone(bmc, servers):  # noqa: F811
    system = servers.take()
    calls = Calls()
    missing = f"{bmc.image_base_url}/no-such-image.iso?token=s3cr3t"
    with pytest.raises(BmcError) as raised:
        adapter_for(bmc, system, observe=calls).reinstall(missing)
    error = raised.value
    assert not isinstance(error, BmcUnavailable)
    assert str(error).startswith("The server's management controller refused the request with HTTP 400")
    assert "s3cr3t" not in str(error) and "no-such-image" not in str(error)
    assert calls.outcomes == ["failed"]
    assert bmc.virtual_cd(system)["Inserted"] is False
    assert bmc.boot(system)["BootSourceOverrideTarget"] == "Hdd"
    assert bmc.power_state(system) == "On"


def test_reinstall_wants_an_http_image_url(bmc):  # noqa: F811
    adapter = adapter_for(bmc, bmc.systems[0], observe=Calls())
    with pytest.raises(ValueError):
        adapter.reinstall("file:///srv/images/installer.iso")
    assert adapter.observe.calls == []  # refused before any call


# Failures.

def test_an_unknown_system_id_is_a_bmc_error(bmc):  # noqa: F811
    calls = Calls()
    adapter = RedfishBmc(bmc.endpoint, "no-such-system", bmc.username, bmc.password, timeout=5, observe=calls)
    for call in (adapter.power_state, adapter.power_on, lambda: adapter.reinstall(bmc.image_url)):
        with pytest.raises(BmcError) as raised:
            call()
        assert not isinstance(raised.value, BmcUnavailable)
        assert not raised.value.timed_out
        assert raised.value.endpoint == bmc.endpoint
        assert str(raised.value) == (
            "The server's management controller knows no server with the system id no-such-system."
        )
    assert calls.outcomes == ["failed"] * 3


def test_wrong_credentials_are_a_bmc_error_without_the_password(bmc):  # noqa: F811
    calls = Calls()
    adapter = adapter_for(bmc, bmc.systems[0], password="wrong-password", observe=calls)
    with pytest.raises(BmcError) as raised:
        adapter.power_state()
    assert str(raised.value) == "The server's management controller refused the credentials (HTTP 401)."
    assert "wrong-password" not in repr(raised.value) and "wrong-password" not in repr(adapter)
    assert calls.outcomes == ["failed"]


def test_a_silent_bmc_is_unavailable_within_the_timeout(bmc):  # noqa: F811
    calls = Calls()
    adapter = RedfishBmc(bmc.silent_endpoint, bmc.systems[0]["uuid"], bmc.username, bmc.password,
                         timeout=1, observe=calls)
    for call in (adapter.power_state, adapter.power_on, lambda: adapter.reinstall(bmc.image_url)):
        started = time.monotonic()
        with pytest.raises(BmcUnavailable) as raised:
            call()
        elapsed = time.monotonic() - started
        assert 0.9 <= elapsed < 3, elapsed
        assert raised.value.timed_out
        assert raised.value.endpoint == bmc.silent_endpoint
        assert str(raised.value) == "The server's management controller did not answer within 1 s."
    assert calls.outcomes == ["timeout"] * 3
    assert all(0.9 <= seconds < 3 for _, _, _, seconds in calls.calls)


def test_a_bmc_that_refuses_connections_is_unavailable(bmc):  # noqa: F811
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    calls = Calls()
    adapter = RedfishBmc(f"http://127.0.0.1:{port}", "any", timeout=2, observe=calls)
    started = time.monotonic()
    with pytest.raises(BmcUnavailable) as raised:
        adapter.power_off()
    assert time.monotonic() - started < 2
    assert not raised.value.timed_out
    assert str(raised.value) == "The server's management controller could not be reached (ConnectionError)."
    assert calls.outcomes == ["failed"]


# The observe hook and the factory.

def test_observe_hears_of_every_call(bmc, servers):  # noqa: F811
    system = servers.take()
    calls = Calls()
    adapter = adapter_for(bmc, system, observe=calls)
    adapter.power_state()
    adapter.reboot(force=True)
    adapter.wait_for_power("on", timeout=POWER_WAIT)
    assert [(a, p, o) for a, p, o, _ in calls.calls] == [("bmc", "redfish", "ok")] * 3
    assert all(seconds >= 0 for _, _, _, seconds in calls.calls)


def test_a_broken_observe_hook_does_not_break_the_call(bmc):  # noqa: F811
    def broken(*args):
        raise RuntimeError("metrics are down")

    assert adapter_for(bmc, bmc.systems[0], observe=broken).power_state() in ("on", "off")


def test_bmc_for_builds_the_adapter_from_a_binding_and_config(bmc, servers):  # noqa: F811
    system = servers.take()
    calls = Calls()
    adapter = bmc_for(bmc.binding(system), bmc.config, observe=calls)
    assert (adapter.endpoint, adapter.system_id, adapter.timeout) == (bmc.endpoint, system["uuid"], 5.0)
    assert adapter.power_state() == "on"
    assert adapter.power_off(force=True) == "ForceOff"
    emulator_reports(bmc, system, "Off")
    assert calls.outcomes == ["ok", "ok"]

    with pytest.raises(BmcError) as unset:  # no credentials and no DEV_CREDENTIALS
        bmc_for(bmc.binding(system), {})
    assert str(unset.value) == "The server's management controller has no credentials configured."
    dev = bmc_for(bmc.binding(system), {"DEV_CREDENTIALS": True})
    assert dev.timeout == 10.0
    with pytest.raises(BmcError) as raised:  # the dev credentials are not the test stand-in's
        dev.power_state()
    assert "refused the credentials" in str(raised.value)

    for binding in ({"endpoint": bmc.endpoint}, {"system_id": system["uuid"]}, None):
        with pytest.raises(ValueError):
            bmc_for(binding, bmc.config)
