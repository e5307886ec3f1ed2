"""A webhook receiver for the tests and the benchmark: a real HTTP server on 127.0.0.1 that
verifies each delivery's signature the way a customer's would (``webhook_rules.verify``),
processes each event id once (deduplicating redeliveries, as a receiver should), and
answers what the test scripts: a status code, or a pause longer than the sender's time
limit."""

import http.server
import json
import threading
import time
from collections import deque

from services.notify.webhook_rules import EVENT_ID_HEADER, SIGNATURE_HEADER, verify


class Receiver:
    def __init__(self, secret=None):
        self.secret = secret
        self.attempts = []  # every POST: {"event_id", "kind", "signed", "status", "at", "body"}
        self.processed = {}  # event id -> body, once each
        self.script = deque()  # what the next POSTs answer: an int status or ("sleep", seconds)
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.handle(self, body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer_next(self, *answers):
        self.script.extend(answers)

    def handle(self, handler, body):
        arrived = time.time()
        with self.lock:
            answer = self.script.popleft() if self.script else 200
        signed = self.secret is not None and verify(self.secret, handler.headers.get(SIGNATURE_HEADER), body,
                                                    time.time())
        if isinstance(answer, tuple):  # a receiver too slow to answer in time
            time.sleep(answer[1])
            answer = 200
        payload = json.loads(body)
        status = answer if signed or self.secret is None else 400
        with self.lock:
            self.attempts.append({"event_id": handler.headers.get(EVENT_ID_HEADER), "kind": payload["type"],
                                  "signed": signed, "status": status, "at": arrived, "body": payload})
            if 200 <= status < 300:
                self.processed.setdefault(payload["id"], payload)
        handler.send_response(status)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")

    def of_kind(self, kind):
        return [body for body in self.processed.values() if body["type"] == kind]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
