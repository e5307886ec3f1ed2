"""OS image server stand-in: serves a small placeholder installer for every image of the
published OS list (``services.inventory.domain.OS_IMAGES``), so a reinstall's virtual media
insertion — which the BMC emulator performs by downloading the image — really happens.

    python -m deploy.standins.images --port 9302 [--directory DIR]

``OS_IMAGE_BASE_URL`` of the inventory service points here in the dev stack and tests.
"""

import argparse
import functools
import http.server
import signal
import sys
import tempfile
from pathlib import Path

from services.inventory.domain import OS_IMAGES

PLACEHOLDER = b"HOSTPANEL-PLACEHOLDER-INSTALLER-IMAGE\n" * 512  # ~19 KB


def prepare(directory):
    """Write one placeholder per published image into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for _, filename in OS_IMAGES.values():
        (directory / filename).write_bytes(PLACEHOLDER)
    return directory


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        sys.stderr.write("images: " + format % args + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9302)
    parser.add_argument("--directory", help="where to write the images (default: a temporary folder)")
    args = parser.parse_args(argv)
    directory = prepare(args.directory or tempfile.mkdtemp(prefix="panel-images-"))
    server = http.server.ThreadingHTTPServer((args.host, args.port),
                                             functools.partial(QuietHandler, directory=str(directory)))
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    print(f"images: serving {len(OS_IMAGES)} OS images on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
