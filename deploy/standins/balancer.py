"""A round-robin TCP balancer for the local stack with replicas (``PANEL_REPLICAS``): it
stands at the gateway's address, as a cloud load balancer would, and hands each new
connection to the next gateway that accepts it (one that is down is skipped, so a killed
gateway costs its open connections only). Bytes are copied as they are: keep-alive
connections and Server-Sent Events streams stay on the gateway they started on.

    python -m deploy.standins.balancer --listen 127.0.0.1:8000 127.0.0.1:8101 127.0.0.1:8102
"""

import argparse
import itertools
import signal
import socket
import sys
import threading

CONNECT_TIMEOUT = 2.0
CHUNK = 65536


def pipe(source, target):
    """Copy ``source`` to ``target`` until either closes, then close both directions."""
    try:
        while True:
            data = source.recv(CHUNK)
            if not data:
                break
            target.sendall(data)
    except OSError:
        pass  # either side went away: the connection ends here as it would without us
    finally:
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the other direction


class Balancer:
    def __init__(self, listen, backends):
        self.backends = backends
        self.turn = itertools.cycle(range(len(backends)))
        self.lock = threading.Lock()
        self.server = socket.create_server(listen, reuse_port=False)

    def connect_next(self):
        """A connection to the next gateway that accepts one (None when none does)."""
        for _ in range(len(self.backends)):
            with self.lock:
                backend = self.backends[next(self.turn)]
            try:
                return socket.create_connection(backend, timeout=CONNECT_TIMEOUT)
            except OSError:
                continue
        return None

    def handle(self, client):
        upstream = self.connect_next()
        if upstream is None:
            client.close()
            return
        upstream.settimeout(None)
        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        pipe(client, upstream)

    def serve_forever(self):
        while True:
            client, _ = self.server.accept()
            threading.Thread(target=self.handle, args=(client,), daemon=True).start()


def address(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, type=address, help="host:port to accept connections on")
    parser.add_argument("backends", nargs="+", type=address, help="host:port of each gateway")
    args = parser.parse_args(argv)
    balancer = Balancer(args.listen, args.backends)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"balancer listening on {args.listen[0]}:{args.listen[1]} for "
          f"{', '.join(f'{h}:{p}' for h, p in args.backends)}", flush=True)
    try:
        balancer.serve_forever()
    except KeyboardInterrupt:
        pass  # Ctrl-C: stop quietly, as the other stand-ins do


if __name__ == "__main__":
    main()
