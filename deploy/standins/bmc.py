"""The BMC stand-in: ``sushy-emulator`` (package sushy-tools) with its fake systems driver,
one Redfish ComputerSystem per server, each with its own Manager and virtual media.

    python -m deploy.standins.bmc [--host 127.0.0.1] [--port 9300]
        (--systems FILE.json | --systems-count N) [--power-delay S] [--no-auth] [--work-dir DIR]

``FILE.json`` is a JSON list of ``{"uuid", "name"}`` (optionally ``"power_state"``: ``"On"``
or ``"Off"``, default ``"On"``); ``--systems-count N`` makes N systems named ``server-1`` …
with fresh UUIDs. Each system is ``/redfish/v1/Systems/<uuid>``.

What runs: sushy-tools' own Flask app (``sushy_tools.emulator.main:app``, what the
``sushy-emulator`` console script runs), configured from a generated config file
``<work dir>/emulator.conf`` and served on a threaded werkzeug server by ``base.serve``, so
that it prints one "listening" line, takes port 0, and stops cleanly on SIGTERM/SIGINT like
the other stand-ins. Without ``--work-dir`` the work dir is a fresh temporary directory,
removed on the way out; it also holds the emulator's state (``state/``: the fake driver keeps
its systems in SQLite there, so nothing is shared with another emulator on the machine) and
the images it downloads on virtual media insertion (``media/``). The same config works with
the console script: ``sushy-emulator --fake --config <work dir>/emulator.conf``.

What the fake driver does (sushy-tools 2.2.0): power state reads; ``ComputerSystem.Reset``
with On/ForceOn, ForceOff, GracefulShutdown, ForceRestart, GracefulRestart, whose effect is
*not* immediate — the new state shows after a delay, random 1–11 s (``--power-delay S`` fixes
it to S whole seconds; a restart reads ``Off`` until then); boot source override by PATCH of
``Boot.BootSourceOverrideTarget`` (kept, but ``BootSourceOverrideEnabled`` is ignored and
always reads ``Continuous``); virtual media ``Cd`` and ``Floppy`` per system with
``VirtualMedia.InsertMedia`` (the emulator downloads the image from its URL, synchronously,
before answering: the URL must be reachable from this process) and ``EjectMedia``.

Credentials: HTTP Basic auth, ``BMC_USERNAME`` / ``BMC_PASSWORD`` from the environment
(dev-admin / dev-password), checked against a bcrypt htpasswd file written into the work
dir; ``/redfish/v1/`` itself stays open (as on real BMCs). ``--no-auth`` turns auth off.
"""

import argparse
import json
import logging
import shutil
import tempfile
import uuid
from pathlib import Path

from deploy.standins.base import serve, setting

DEFAULT_PORT = 9300
DEV_USERNAME, DEV_PASSWORD = "dev-admin", "dev-password"


def load_systems(path=None, count=None):
    """The systems to emulate: a list of ``{"uuid", "name", "power_state"}``."""
    if path is not None:
        entries = json.loads(Path(path).read_text())
        if not isinstance(entries, list):
            raise SystemExit(f"{path}: expected a JSON list of {{\"uuid\", \"name\"}}")
    else:
        entries = [{"uuid": str(uuid.uuid4()), "name": f"server-{n}"} for n in range(1, count + 1)]
    systems, seen = [], set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("uuid") or not entry.get("name"):
            raise SystemExit(f"system #{index}: needs a \"uuid\" and a \"name\"")
        if entry["uuid"] in seen:
            raise SystemExit(f"system #{index}: uuid {entry['uuid']} given twice")
        seen.add(entry["uuid"])
        power = entry.get("power_state", "On")
        if power not in ("On", "Off"):
            raise SystemExit(f"system #{index}: power_state must be \"On\" or \"Off\"")
        systems.append({"uuid": str(entry["uuid"]), "name": str(entry["name"]), "power_state": power})
    return systems


def fake_systems(systems):
    """The fake driver's ``SUSHY_EMULATOR_FAKE_SYSTEMS`` entries (it needs ``nics``)."""
    result = []
    for number, system in enumerate(systems, start=1):
        result.append({
            "uuid": system["uuid"],
            "name": system["name"],
            "power_state": system["power_state"],
            "external_notifier": False,
            "nics": [{"mac": "52:54:00:%02x:%02x:%02x" % (
                (number >> 16) & 0xFF, (number >> 8) & 0xFF, number & 0xFF,
            ), "ip": None}],
        })
    return result


def write_config(work_dir, host, port, systems, auth_file=None):
    """Write ``<work_dir>/emulator.conf`` (a Flask config file: Python assignments)."""
    settings = {
        "SUSHY_EMULATOR_LISTEN_IP": host,
        "SUSHY_EMULATOR_LISTEN_PORT": port,
        "SUSHY_EMULATOR_FAKE_DRIVER": True,
        "SUSHY_EMULATOR_FAKE_SYSTEMS": fake_systems(systems),
        "SUSHY_EMULATOR_STATE_DIR": str(work_dir / "state"),
        "SUSHY_EMULATOR_VMEDIA_VERIFY_SSL": False,
    }
    if auth_file is not None:
        settings["SUSHY_EMULATOR_AUTH_FILE"] = str(auth_file)
    path = work_dir / "emulator.conf"
    path.write_text("".join(f"{key} = {value!r}\n" for key, value in settings.items()))
    return path


def write_auth_file(work_dir, username, password):
    import bcrypt

    digest = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    path = work_dir / "htpasswd"
    path.write_text(f"{username}:{digest}\n")
    path.chmod(0o600)
    return path


class _FixedDelay:
    """Stands in for the ``random`` module inside the fake driver, which draws the delay of
    a power transition with ``random.randint(1, 11)``."""

    def __init__(self, seconds):
        self.seconds = seconds

    def randint(self, low, high):
        return self.seconds


class _Named:
    """The emulator's WSGI app under the name ``base.serve`` prints."""

    name = "bmc"

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


def build_app(config_path, media_dir, power_delay=None):
    """sushy-tools' Flask app, configured as ``sushy-emulator --fake --config`` would be."""
    # Images fetched on InsertMedia go to tempfile's directory: keep them in the work dir.
    tempfile.tempdir = str(media_dir)
    from sushy_tools.emulator import main as emulator
    from sushy_tools.emulator.resources.systems import fakedriver

    if power_delay is not None:
        if not hasattr(fakedriver, "random"):
            raise SystemExit("--power-delay: this sushy-tools' fake driver draws no random delay")
        fakedriver.random = _FixedDelay(power_delay)
    emulator.app.configure(config_file=str(config_path))
    emulator.app.config["SUSHY_EMULATOR_FAKE_DRIVER"] = True
    return _Named(emulator.app)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--systems", help='JSON file: a list of {"uuid", "name"}')
    which.add_argument("--systems-count", type=int, help="make N systems with fresh UUIDs")
    parser.add_argument(
        "--power-delay", type=int, default=None,
        help="seconds before a power change shows (default: the emulator's random 1-11 s)",
    )
    parser.add_argument("--no-auth", action="store_true", help="no HTTP Basic auth")
    parser.add_argument("--work-dir", help="config, state and media (default: a temporary dir)")
    args = parser.parse_args(argv)
    if args.systems_count is not None and args.systems_count < 1:
        parser.error("--systems-count must be at least 1")
    if args.power_delay is not None and args.power_delay < 0:
        parser.error("--power-delay must not be negative")

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    systems = load_systems(args.systems, args.systems_count)
    temporary = args.work_dir is None
    work_dir = Path(tempfile.mkdtemp(prefix="bmc-standin-") if temporary else args.work_dir).resolve()
    try:
        for sub in ("state", "media"):
            (work_dir / sub).mkdir(parents=True, exist_ok=True)
        auth_file = None
        if not args.no_auth:
            auth_file = write_auth_file(
                work_dir, setting("BMC_USERNAME", DEV_USERNAME), setting("BMC_PASSWORD", DEV_PASSWORD),
            )
        config = write_config(work_dir, args.host, args.port, systems, auth_file)
        app = build_app(config, work_dir / "media", args.power_delay)
        serve(app, args.host, args.port, lambda port: (
            f"bmc stand-in listening on http://{args.host}:{port} (Redfish at /redfish/v1/, "
            f"{len(systems)} systems, auth {'off' if args.no_auth else 'HTTP Basic'}, config {config})"
        ))
    finally:
        if temporary:
            shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
