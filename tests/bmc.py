"""The BMC stand-in (deploy/standins/bmc.py: ``sushy-emulator --fake``) as a subprocess, for
tests, with what the tests around it need.

``running_bmc(directory, systems)`` writes ``systems`` (a list of ``{"uuid", "name"}``, optionally
``"power_state"``) to ``<directory>/systems.json``, starts the emulator on a free port
(``sys.executable -m deploy.standins.bmc``, output to ``<directory>/bmc.log``, test
credentials, a fixed power delay), starts a plain HTTP server for OS images
(``python -m http.server`` on ``<directory>/images``: the emulator downloads what is inserted
as virtual media) and a silent TCP server (accepts connections, never answers), polls until
the emulator answers, yields a ``Bmc`` handle and stops everything at the end. The ``bmc``
fixture does this once per test module; import it into a test module
(``from tests.bmc import bmc``) and give each test a server of its own (``bmc.systems[i]``):
the emulator keeps its state between tests.
"""

import contextlib
import json
import socket
import sys
import uuid
from pathlib import Path

import pytest
import requests

from tests.standins import START_TIMEOUT
from tests.support import ChildProcess, free_port, wait_for

USERNAME, PASSWORD = "test-bmc-admin", "test-bmc-password"
# Seconds before the fake driver shows a power change. 2, not 1: the driver rounds the start
# down to a whole second, so with 1 a change could show at once and a restart's "Off" be missed.
POWER_DELAY = 2
IMAGE_NAME = "installer.iso"
SYSTEM_COUNT = 20


def make_systems(count=SYSTEM_COUNT, prefix="server"):
    """``count`` systems with fresh UUIDs, all powered on."""
    return [{"uuid": str(uuid.uuid4()), "name": f"{prefix}-{n}", "power_state": "On"} for n in range(1, count + 1)]


class SilentServer:
    """A TCP port that takes connections and never answers: the kernel completes each
    handshake into the listen backlog, nobody ever accepts or reads. A client connects at
    once and then waits for an answer until its own time-out."""

    def __init__(self):
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(128)
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self):
        self._socket.close()


class Bmc:
    """A running emulator: where it is, its systems, and direct Redfish reads of its state
    (plain requests, not the adapter under test)."""

    def __init__(self, port, systems, image_port, silent, process):
        self.endpoint = f"http://127.0.0.1:{port}"
        self.systems = systems
        self.username = USERNAME
        self.password = PASSWORD
        self.image_base_url = f"http://127.0.0.1:{image_port}"
        self.image_url = f"{self.image_base_url}/{IMAGE_NAME}"
        self.silent_endpoint = silent.url
        self.config = {"BMC_USERNAME": USERNAME, "BMC_PASSWORD": PASSWORD, "BMC_TIMEOUT_SECONDS": 5}
        self._process = process

    def binding(self, system):
        """A server's stored BMC binding, as the inventory service keeps it."""
        return {"endpoint": self.endpoint, "system_id": system["uuid"]}

    def redfish(self, path):
        answer = requests.get(f"{self.endpoint}{path}", auth=(self.username, self.password), timeout=5)
        answer.raise_for_status()
        return answer.json()

    def system_json(self, system):
        return self.redfish(f"/redfish/v1/Systems/{system['uuid']}")

    def power_state(self, system):
        """The emulator's ``PowerState`` of ``system``: ``"On"`` or ``"Off"``."""
        return self.system_json(system)["PowerState"]

    def boot(self, system):
        return self.system_json(system)["Boot"]

    def virtual_cd(self, system):
        return self.redfish(f"/redfish/v1/Systems/{system['uuid']}/VirtualMedia/Cd")

    def log_text(self):
        return self._process.log_text()


def _answers(url):
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


@contextlib.contextmanager
def running_bmc(directory, systems=None, power_delay=POWER_DELAY):
    """Start the emulator with ``systems`` (default: ``make_systems()``), an image server and a
    silent server; wait until they answer; yield ``Bmc``; stop them."""
    directory = Path(directory)
    images = directory / "images"
    images.mkdir(parents=True, exist_ok=True)
    (images / IMAGE_NAME).write_bytes(b"HOSTPANEL-TEST-INSTALLER" * 2048)
    (images / "rescue.iso").write_bytes(b"HOSTPANEL-TEST-RESCUE" * 2048)
    systems = make_systems() if systems is None else systems
    systems_file = directory / "systems.json"
    systems_file.write_text(json.dumps(systems))
    port, image_port = free_port(), free_port()
    processes = []
    silent = SilentServer()
    try:
        emulator = ChildProcess(
            "bmc stand-in",
            [sys.executable, "-m", "deploy.standins.bmc", "--port", str(port), "--systems", str(systems_file),
             "--power-delay", str(power_delay), "--work-dir", str(directory / "emulator")],
            directory / "bmc.log", env={"BMC_USERNAME": USERNAME, "BMC_PASSWORD": PASSWORD},
        )
        processes.append(emulator)
        processes.append(ChildProcess(
            "image server",
            [sys.executable, "-m", "http.server", str(image_port), "--bind", "127.0.0.1", "--directory", str(images)],
            directory / "images.log",
        ))
        bmc = Bmc(port, systems, image_port, silent, emulator)
        checks = [
            (emulator, lambda: _answers(f"{bmc.endpoint}/redfish/v1/")),
            (processes[1], lambda: _answers(bmc.image_url)),
        ]
        for process, check in checks:
            try:
                wait_for(lambda: process.check_alive() or check(), timeout=START_TIMEOUT,
                         interval=0.05, message=f"{process.name} to answer")
            except AssertionError as error:
                raise RuntimeError(f"{error}:\n{process.log_text()}") from None
        yield bmc
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.stop()
        silent.close()


@pytest.fixture(scope="module")
def bmc(tmp_path_factory):
    """A running emulator shared by one test module (each test takes systems of its own)."""
    with running_bmc(tmp_path_factory.mktemp("bmc")) as running:
        yield running
