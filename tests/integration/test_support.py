"""Support requests through the gateway (R-SUP-1…4): the real support, notify, inventory
services and gateway on a real broker, attachments in a real directory, and the staff tool
run as a separate process (``python -m services.support.staff``) against the running
service, as support staff would."""

import base64
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import uuid
import zipfile

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import event as sa_event

from common import topology
from common.config import REPO_ROOT
from common.db import create_engine
from common.errors import Forbidden, ValidationFailed
from deploy.components import migrate
from gateway.service import GatewayService
from gateway.sessions import SessionStore
from services.inventory.service import InventoryService
from services.notify.service import NotifyService
from services.support.projections import schema
from services.support.projections import tickets as ticket_rows
from services.support.service import SupportService
from services.support.usecases import SupportUseCases
from tests.integration.test_notify import StreamReader
from tests.support import free_port, store_of, wait_for

MIB = 1024 * 1024
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(200)


def binary(head, size):
    """``head`` followed by random bytes up to ``size``: a file of that type, every byte value in it."""
    return head + os.urandom(size - len(head))


def zip_bytes():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("dmesg.bin", os.urandom(50_000))
    return buffer.getvalue()


class Desk:
    """The customer's side (HTTP) and the staff's side (the CLI, RPC)."""

    def __init__(self, amqp_uri, api, sessions, blob_dir):
        self.amqp_uri = amqp_uri
        self.api = api
        self.sessions = sessions
        self.blob_dir = blob_dir
        self.tokens = {}

    def login(self, user_id):
        self.tokens[user_id], _ = self.sessions.create(f"session-{user_id}-{uuid.uuid4().hex[:6]}", user_id)

    def headers(self, user_id, **extra):
        return {"Authorization": f"Bearer {self.tokens[user_id]}", **extra}

    def get(self, path, user_id="ann", **kwargs):
        return requests.get(f"{self.api}{path}", headers=self.headers(user_id), timeout=30, **kwargs)

    def post(self, path, user_id="ann", headers=None, **kwargs):
        return requests.post(f"{self.api}{path}", headers=self.headers(user_id, **(headers or {})), timeout=60,
                             **kwargs)

    def open(self, subject="Server does not boot", description="Since this morning.", files=(), user_id="ann",
             **form):
        """POST a new request as multipart; ``files`` are (name, bytes, declared type)."""
        parts = [("attachments", (name, data, declared)) for name, data, declared in files]
        return self.post("/support/tickets", user_id, data={"subject": subject, "description": description, **form},
                         files=parts or [("attachments", ("", b"", "application/octet-stream"))])

    def opened(self, subject="Server does not boot", **kwargs):
        answer = self.open(subject, **kwargs)
        assert answer.status_code == 201, answer.text
        return answer.json()

    def reply(self, ticket_id, body, files=(), user_id="ann"):
        parts = [("attachments", (name, data, declared)) for name, data, declared in files]
        return self.post(f"/support/tickets/{ticket_id}/messages", user_id, data={"body": body},
                         files=parts or None)

    def listing(self, status="all", user_id="ann", **params):
        answer = self.get("/support/tickets", user_id, params={"status": status, **params})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def ticket(self, ticket_id, user_id="ann"):
        return self.get(f"/support/tickets/{ticket_id}", user_id).json()

    def staff(self, *argv):
        """Run the staff tool; returns (exit code, stdout, stderr)."""
        done = subprocess.run([sys.executable, "-m", "services.support.staff", *argv], cwd=REPO_ROOT,
                              env=dict(os.environ, AMQP_URI=self.amqp_uri), capture_output=True, text=True,
                              timeout=60, check=False)
        return done.returncode, done.stdout, done.stderr

    def staff_json(self, *argv):
        code, out, err = self.staff("--json", *argv)
        assert code == 0, err
        return json.loads(out)

    def blob_files(self):
        return sorted(p for p in self.blob_dir.rglob("*") if p.is_file())


@pytest.fixture
def desk(start_service, amqp_uri, tmp_path):
    urls = {name: f"sqlite:///{tmp_path / (name + '.db')}" for name in ("support", "notify", "inventory", "gateway")}
    for name, url in urls.items():
        migrate(name, create_engine(url))
    topology.declare(amqp_uri, [NotifyService, SupportService, InventoryService])
    blob_dir = tmp_path / "attachments"
    start_service(NotifyService, DATABASE_URL=urls["notify"], METRICS_PORT="off", OUTBOX_POLL_SECONDS=0.2)
    support = start_service(SupportService, DATABASE_URL=urls["support"], METRICS_PORT="off",
                            OUTBOX_POLL_SECONDS=0.2, SUPPORT_BLOB_DIR=str(blob_dir))
    start_service(InventoryService, DATABASE_URL=urls["inventory"], METRICS_PORT="off", BMC_TIMEOUT_SECONDS=1)
    port = free_port()
    start_service(GatewayService, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}", DATABASE_URL=urls["gateway"],
                  METRICS_PORT="off", SESSION_COOKIE_SECURE=False)
    desk = Desk(amqp_uri, f"http://127.0.0.1:{port}/api/v1", SessionStore(create_engine(urls["gateway"])), blob_dir)
    desk.support = support
    desk.login("ann")
    desk.login("bob")
    return desk


def provision(desk, user_id):
    """A server of ``user_id`` whose BMC does not answer (nothing listens there)."""
    with ClusterRpcProxy({"AMQP_URI": desk.amqp_uri}, timeout=30) as cluster:
        return cluster.inventory.provision_server(
            user_id, "NL", "Dedicated AX41", {"cpu": "AMD EPYC", "ram_gb": 64}, ["203.0.113.7"], "ubuntu-24.04",
            {"endpoint": f"http://127.0.0.1:{free_port()}", "system_id": "x"}, "2026-12-31", "49.00")


# -- R-SUP-1 / R-SUP-3: the list and its filters -------------------------------------------

def test_the_list_filters_open_closed_and_all_newest_activity_first(desk):
    """R-SUP-1, R-SUP-3: every request is listed; open means not closed."""
    first = desk.opened("First")
    second = desk.opened("Second")
    third = desk.opened("Third")
    assert desk.post(f"/support/tickets/{second['id']}/close").status_code == 200
    assert desk.reply(first["id"], "Any news?").status_code == 201  # first now has the newest activity

    everything = desk.listing("all")
    assert [t["subject"] for t in everything["items"]] == ["First", "Second", "Third"]
    assert (everything["total"], everything["page"], everything["per_page"]) == (3, 1, 50)
    assert [t["subject"] for t in desk.listing("open")["items"]] == ["First", "Third"]
    closed = desk.listing("closed")
    assert [(t["id"], t["status"]) for t in closed["items"]] == [(second["id"], "closed")]
    assert set(closed["items"][0]) >= {"id", "subject", "status", "created_at", "updated_at"}
    page = desk.listing("all", per_page=2, page=2)
    assert (page["total"], [t["id"] for t in page["items"]]) == (3, [third["id"]])
    assert desk.listing("all", user_id="bob")["total"] == 0
    answer = desk.get("/support/tickets", params={"status": "pending"})
    assert answer.status_code == 400 and "status" in answer.json()["error"]["fields"]


def seed_tickets(desk, requests_):
    """Requests straight into the read model (``requests_``: (ticket_id, user_id, status,
    updated_at))."""
    with store_of(desk.support).engine.begin() as conn:
        for ticket_id, user_id, status, at in requests_:
            conn.execute(ticket_rows.insert().values(
                ticket_id=ticket_id, user_id=user_id, subject=f"About {ticket_id}", status=status, message_count=1,
                last_author="customer", created_at="2026-11-30T09:00:00.000000+00:00", updated_at=at))


def walk(desk, how, status="all"):
    """Every request of ann's list, ``how`` = "page" (page 1, 2, … until the total) or
    "cursor" (next_cursor until null); the ids in the order they came."""
    ids, params = [], {"per_page": 2}
    for step in range(1, 20):
        answer = desk.listing(status, **params)
        ids += [ticket["id"] for ticket in answer["items"]]
        if how == "page":
            if step * answer["per_page"] >= answer["total"]:
                return ids
            params = {**params, "page": step + 1}
        else:
            if answer["next_cursor"] is None:
                return ids
            params = {**params, "cursor": answer["next_cursor"]}
    raise AssertionError(f"no end after {step} pages: {ids}")


def test_the_list_pages_back_by_cursor_as_it_does_by_page_ties_included(desk):
    """R-SUP-1, issue 21: a cursor page is where the previous one ended, also inside a run of
    requests last active at the same instant (there the id decides)."""
    at = ["2026-12-01T10:00:00.000000+00:00", "2026-12-02T10:00:00.000000+00:00", "2026-12-03T10:00:00.000000+00:00"]
    seeded = [("t-a", "ann", "open", at[0]), ("t-b", "ann", "closed", at[1]), ("t-e", "ann", "open", at[1]),
              ("t-c", "ann", "answered", at[1]), ("t-d", "ann", "closed", at[1]), ("t-f", "ann", "open", at[2]),
              ("t-g", "ann", "reopened", at[2]), ("t-x", "bob", "open", at[1])]
    seed_tickets(desk, seeded)
    newest_first = ["t-g", "t-f", "t-e", "t-d", "t-c", "t-b", "t-a"]

    assert walk(desk, "page") == newest_first  # pages of 2 end inside the run at at[1]
    assert walk(desk, "cursor") == newest_first
    not_closed = [t for t in newest_first if dict((s[0], s[2]) for s in seeded)[t] != "closed"]
    assert walk(desk, "cursor", "open") == walk(desk, "page", "open") == not_closed
    assert walk(desk, "cursor", "closed") == walk(desk, "page", "closed") == ["t-d", "t-b"]
    assert desk.listing("all", per_page=7)["next_cursor"] is None
    assert desk.listing("all", user_id="bob")["next_cursor"] is None

    forged = base64.urlsafe_b64encode(json.dumps(["yesterday", "t-c"]).encode()).decode()
    for bad in ("last", forged, "t-c"):
        answer = desk.get("/support/tickets", params={"cursor": bad})
        assert answer.status_code == 400 and set(answer.json()["error"]["fields"]) == {"cursor"}, (bad, answer.text)


def test_a_cursor_page_of_requests_reads_through_the_lists_index(desk):
    """Issue 21: the database's plan of a cursor page starts at the cursor in the list's own
    index (no sort, no walk of the customer's requests with newer activity)."""
    seed_tickets(desk, [(f"t-{n:02}", "ann", ("open", "closed")[n % 2], f"2026-12-01T10:00:{n % 5:02}.000000+00:00")
                        for n in range(12)])
    engine = store_of(desk.support).engine
    use_cases = SupportUseCases(schema.create_store(engine), None, None, {})
    cursor = use_cases.list_tickets("ann", per_page=5)["next_cursor"]
    for status in ("all", "open", "closed"):
        statements = []

        def record(conn, cur, statement, parameters, context, many):
            statements.append((statement, parameters))

        sa_event.listen(engine, "before_cursor_execute", record)
        try:
            use_cases.list_tickets("ann", status, per_page=5, cursor=cursor)
        finally:
            sa_event.remove(engine, "before_cursor_execute", record)
        statement, parameters = next((s, p) for s, p in statements if "ORDER BY tickets.updated_at DESC" in s)
        with engine.connect() as conn:
            plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)]
        assert [line for line in plan if "INDEX ix_tickets_user_updated_id (user_id=?" in line
                and "(updated_at,ticket_id)<(?,?)" in line], plan
        assert not [line for line in plan if "TEMP B-TREE" in line or line.startswith("SCAN")], plan


def test_a_request_can_be_read_at_any_time_with_its_conversation(desk):
    """R-SUP-3"""
    ticket = desk.opened("Disk errors", description="smartctl shows reallocated sectors.")
    desk.reply(ticket["id"], "Here is more.")
    desk.post(f"/support/tickets/{ticket['id']}/close")
    shown = desk.ticket(ticket["id"])
    assert shown["status"] == "closed" and shown["subject"] == "Disk errors"
    assert [(m["author"], m["body"]) for m in shown["messages"]] == [
        ("customer", "smartctl shows reallocated sectors."), ("customer", "Here is more.")]


@pytest.mark.parametrize("form, field", [
    ({"subject": "", "description": "x"}, "subject"), ({"subject": "s", "description": ""}, "description"),
    ({"description": "x"}, "subject"),
])
def test_a_request_without_subject_or_description_is_a_400_naming_the_field(desk, form, field):
    answer = desk.post("/support/tickets", data=form, files=[("attachments", ("a.png", PNG, "image/png"))])
    assert answer.status_code == 400 and field in answer.json()["error"]["fields"], answer.text
    assert desk.listing()["total"] == 0


def test_the_same_idempotency_key_opens_one_request(desk):
    headers = {"Idempotency-Key": "k-1"}
    first = desk.post("/support/tickets", headers=headers, data={"subject": "Once", "description": "d"})
    again = desk.post("/support/tickets", headers=headers, data={"subject": "Once", "description": "d"})
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"] and desk.listing()["total"] == 1


# -- R-SUP-2: a new request with attachments -----------------------------------------------

def test_attachments_come_back_byte_for_byte_with_safe_headers(desk):
    """R-SUP-2: several binary files are stored and downloaded identical."""
    files = [("screen.png", binary(PNG, 300_000), "image/png"),
             ("invoice.pdf", binary(PDF, 2 * MIB), "application/pdf"),
             ("dmesg.zip", zip_bytes(), "application/zip"),
             ('boot "log" ü.txt', "Grüße: kernel panic\n".encode() * 1000, "text/plain")]
    ticket = desk.opened("With files", files=files)
    stored = {a["filename"]: a for a in ticket["attachments"]}
    assert set(stored) == {"screen.png", "invoice.pdf", "dmesg.zip", "boot _log_ ü.txt"}
    assert ticket["messages"][0]["attachments"] and len(ticket["messages"]) == 1
    for name, data, declared in files:
        attachment = stored[name.replace('"', "_")]
        assert attachment["size"] == len(data) and attachment["content_type"] == declared
        download = desk.get(f"/support/tickets/{ticket['id']}/attachments/{attachment['id']}")
        assert download.status_code == 200
        assert hashlib.sha256(download.content).digest() == hashlib.sha256(data).digest()
        assert download.headers["Content-Type"].split(";")[0] == declared
        assert download.headers["X-Content-Type-Options"] == "nosniff"
        assert download.headers["Content-Disposition"].startswith("attachment; filename=")
    text = stored["boot _log_ ü.txt"]
    disposition = desk.get(f"/support/tickets/{ticket['id']}/attachments/{text['id']}").headers["Content-Disposition"]
    assert disposition == 'attachment; filename="boot _log_ _.txt"; filename*=UTF-8\'\'boot%20_log_%20%C3%BC.txt'
    # Stored under generated names: nothing of the customer's file names reaches the disk.
    assert {p.name for p in desk.blob_files()} == {p.name for p in desk.blob_files() if len(p.name) == 32}
    assert len(desk.blob_files()) == 4


def test_a_reply_with_attachments_is_a_201_and_its_files_download(desk):
    ticket = desk.opened("Logs follow")
    log = binary(b"\x1f\x8b", 10)  # gzip: not on the list
    assert desk.reply(ticket["id"], "gz", files=[("x.gz", log, "application/gzip")]).status_code == 415
    answer = desk.reply(ticket["id"], "See attached.", files=[("a.png", binary(PNG, 5000), "image/png"),
                                                              ("b.pdf", binary(PDF, 7000), "application/pdf")])
    assert answer.status_code == 201, answer.text
    message = answer.json()
    assert message["author"] == "customer" and [a["filename"] for a in message["attachments"]] == ["a.png", "b.pdf"]
    for attachment in message["attachments"]:
        got = desk.get(f"/support/tickets/{ticket['id']}/attachments/{attachment['id']}")
        assert len(got.content) == attachment["size"]


@pytest.mark.parametrize("attachments", [[{}], ["a.png"], "a.png"])
def test_attachments_in_a_json_body_are_refused_not_dropped(desk, attachments):
    """Files travel as multipart: a JSON body naming attachments is a 400 saying so, never a
    201 that silently lost what the customer attached (issue 20)."""
    ticket = desk.post("/support/tickets", json={"subject": "Disk", "description": "See the log.",
                                                 "attachments": attachments})
    assert ticket.status_code == 400, ticket.text
    assert "multipart/form-data" in ticket.json()["error"]["fields"]["attachments"][0]
    text_in_form = desk.post("/support/tickets", data={"subject": "Disk", "description": "x", "attachments": "a"})
    assert text_in_form.status_code == 400 and "attachments" in text_in_form.json()["error"]["fields"]
    assert desk.listing()["total"] == 0
    plain = desk.post("/support/tickets", json={"subject": "Disk", "description": "See the log.", "attachments": []})
    assert plain.status_code == 201 and plain.json()["attachments"] == []


@pytest.mark.parametrize("sizes", [[10 * MIB + 1], [MIB, 10 * MIB + 1]], ids=["one-file", "second-file"])
def test_a_file_over_ten_mib_is_a_413_and_nothing_is_stored(desk, sizes):
    files = [(f"f{n}.pdf", binary(PDF, size), "application/pdf") for n, size in enumerate(sizes)]
    answer = desk.open(files=files)
    assert answer.status_code == 413, answer.text
    assert "attachments" in answer.json()["error"]["fields"]
    assert desk.listing()["total"] == 0 and desk.blob_files() == []


@pytest.mark.parametrize("sizes", [
    [8 * MIB + MIB // 2] * 3,                     # 25.5 MiB: read, then refused by the files' sum
    [9 * MIB, 9 * MIB, 9 * MIB],                  # 27 MiB: refused from Content-Length, before reading
], ids=["by-sum", "by-content-length"])
def test_files_over_twenty_five_mib_together_are_a_413(desk, sizes):
    files = [(f"f{n}.pdf", binary(PDF, size), "application/pdf") for n, size in enumerate(sizes)]
    answer = desk.open(files=files)
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"]["code"] == "payload_too_large"
    assert desk.listing()["total"] == 0 and desk.blob_files() == []


def test_an_oversized_body_is_refused_before_it_is_sent(desk):
    """Only the headers go out: the 413 comes back without the gateway waiting for 30 MB."""
    host, port = desk.api.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall((f"POST /api/v1/support/tickets HTTP/1.1\r\nHost: {host}\r\n"
                            f"Authorization: Bearer {desk.tokens['ann']}\r\n"
                            "Content-Type: multipart/form-data; boundary=xyz\r\n"
                            f"Content-Length: {30 * MIB}\r\n\r\n").encode())
        status_line = connection.makefile("rb").readline()
    assert status_line.split()[1] == b"413"


def test_exactly_the_limits_are_accepted(desk):
    files = [("a.pdf", binary(PDF, 10 * MIB), "application/pdf"), ("b.pdf", binary(PDF, 10 * MIB), "application/pdf"),
             ("c.pdf", binary(PDF, 5 * MIB), "application/pdf")]
    ticket = desk.opened("At the limit", files=files)
    assert sorted(a["size"] for a in ticket["attachments"]) == [5 * MIB, 10 * MIB, 10 * MIB]


@pytest.mark.parametrize("name, data, declared", [
    ("photo.png", EXE, "image/png"),                       # an executable claiming to be an image
    ("report.png", PDF, "image/png"),                      # a PDF declared as PNG
    ("setup.exe", EXE, "application/x-msdownload"),        # not on the allow-list
    ("page.html", b"<html><script>alert(1)</script></html>", "text/html"),
    ("notes.txt", binary(PNG, 500), "text/plain"),         # binary declared as text
])
def test_a_forbidden_or_mismatched_type_is_a_415(desk, name, data, declared):
    answer = desk.open(files=[("ok.png", PNG, "image/png"), (name, data, declared)])
    assert answer.status_code == 415, answer.text
    error = answer.json()["error"]
    assert error["code"] == "unsupported_media_type" and name in error["fields"]["attachments"][0]
    assert desk.listing()["total"] == 0 and desk.blob_files() == []


def test_a_request_can_name_one_of_the_customers_servers_but_not_anothers(desk):
    mine = provision(desk, "ann")
    theirs = provision(desk, "bob")
    ticket = desk.opened("About my server", server_id=mine["id"])
    assert (ticket["server_id"], ticket["server_number"]) == (mine["id"], mine["number"])
    for server_id in (theirs["id"], "no-such-server"):
        answer = desk.open("About theirs", server_id=server_id)
        assert answer.status_code == 400 and "server_id" in answer.json()["error"]["fields"], answer.text
    assert desk.listing()["total"] == 1


# -- isolation -------------------------------------------------------------------------------

def test_another_customers_request_and_attachments_are_404(desk):
    ticket = desk.opened("Private", files=[("secret.pdf", binary(PDF, 3000), "application/pdf")])
    attachment = ticket["attachments"][0]
    bobs = desk.opened("Bob's own", user_id="bob")
    for path in (f"/support/tickets/{ticket['id']}",
                 f"/support/tickets/{ticket['id']}/attachments/{attachment['id']}",
                 f"/support/tickets/{bobs['id']}/attachments/{attachment['id']}",  # ann's file under bob's request
                 "/support/tickets/no-such-ticket"):
        answer = desk.get(path, "bob")
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found", path
    for path in (f"/support/tickets/{ticket['id']}/close", f"/support/tickets/{ticket['id']}/reopen"):
        assert desk.post(path, "bob").status_code == 404
    assert desk.reply(ticket["id"], "hijack", user_id="bob").status_code == 404
    assert desk.ticket(ticket["id"])["status"] == "open" and len(desk.ticket(ticket["id"])["messages"]) == 1
    assert requests.get(f"{desk.api}/support/tickets", timeout=10).status_code == 401


def test_staff_methods_refuse_a_customers_context(desk):
    customer = ClusterRpcProxy({"AMQP_URI": desk.amqp_uri}, context_data={"user_id": "ann"}, timeout=30)
    with customer as cluster, pytest.raises(Forbidden):
        cluster.support.staff_list_tickets("all")


# -- statuses, staff and live updates (R-SUP-4) --------------------------------------------

def test_status_transitions_between_customer_and_staff(desk):
    ticket = desk.opened("Network slow")
    tid = ticket["id"]
    assert ticket["status"] == "open"
    assert desk.staff_json("reply", tid, "--as", "Alice", "--body", "Which server?")["ticket"]["status"] == "answered"
    assert desk.reply(tid, "SRV-10001.").json()["ticket"]["status"] == "open"
    answer = desk.post(f"/support/tickets/{tid}/reopen")
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "invalid_transition"
    assert desk.staff_json("close", tid, "--as", "Alice")["status"] == "closed"
    code, _, err = desk.staff("reply", tid, "--as", "Alice", "--body", "One more thing")
    assert code == 1 and "ticket_closed" in err
    assert desk.reply(tid, "It is slow again.").json()["ticket"]["status"] == "reopened"
    assert desk.post(f"/support/tickets/{tid}/close").json()["status"] == "closed"
    assert desk.post(f"/support/tickets/{tid}/reopen").json()["status"] == "reopened"
    shown = desk.ticket(tid)
    assert [(m["author"], m["staff_name"]) for m in shown["messages"]] == [
        ("customer", None), ("staff", "Alice"), ("customer", None), ("customer", None)]
    # The read models are the fold of the log: a rebuild from position 0 gives the same rows.
    store = store_of(desk.support)
    live = store.snapshot_projections()
    assert store.rebuild_projections(dry_run=True)[1] == live and live["tickets"]


def test_a_staff_reply_and_status_change_arrive_on_the_customers_stream(desk):
    """R-SUP-4: the customer's interface updates itself; the list is the refresh."""
    ticket = desk.opened("Reboot loop")
    stream = StreamReader(f"{desk.api}/notifications/stream", desk.tokens["ann"])
    bobs_stream = StreamReader(f"{desk.api}/notifications/stream", desk.tokens["bob"])
    try:
        code, out, err = desk.staff("reply", ticket["id"], "--as", "Alice", "--body", "We replaced the PSU.")
        assert code == 0, err
        assert f"#{ticket['id']} is answered" in out

        def titles():
            return [e["data"]["title"] for e in stream.events]

        wait_for(lambda: {"Alice replied to your request", "Support request answered"} <= set(titles()),
                 timeout=20, message=lambda: f"the staff reply on the stream (got {titles()})")
        assert all(ticket["id"] in e["data"]["body"] for e in stream.events if "request" in e["data"]["title"])
        assert desk.listing("open")["items"][0]["status"] == "answered"
        desk.staff("close", ticket["id"], "--as", "Alice")
        wait_for(lambda: "Support request closed" in titles(), timeout=20, message="the close on the stream")
        assert desk.listing("closed")["items"][0]["id"] == ticket["id"]
        assert not any("Alice" in e["data"]["title"] for e in bobs_stream.events)
    finally:
        stream.close()
        bobs_stream.close()


def test_the_staff_tool_lists_and_shows_every_customers_requests(desk):
    ann = desk.opened("Ann's request", files=[("shot.png", binary(PNG, 1000), "image/png")])
    bob = desk.opened("Bob's request", user_id="bob")
    listed = desk.staff_json("list", "--status", "open")
    assert {(t["id"], t["user_id"]) for t in listed["items"]} == {(ann["id"], "ann"), (bob["id"], "bob")}
    code, out, _ = desk.staff("show", ann["id"])
    assert code == 0 and "Ann's request" in out and "shot.png" in out and "Since this morning." in out
    code, out, _ = desk.staff("list")
    assert code == 0 and "2 request(s)" in out and "Bob's request" in out
    code, _, err = desk.staff("show", "no-such-ticket")
    assert code == 1 and "not_found" in err
    code, _, err = desk.staff("reply", ann["id"], "--as", "", "--body", "x")
    assert code == 1 and "staff_name" in err


def test_a_staff_reply_carries_files_the_customer_downloads_byte_for_byte(desk, tmp_path):
    ticket = desk.opened("Where is my invoice?")
    invoice = tmp_path / "invoice-2026-11.pdf"
    invoice.write_bytes(binary(PDF, 40_000))
    forged = tmp_path / "report.pdf"
    forged.write_bytes(EXE)  # a program dressed as a PDF
    code, _, err = desk.staff("reply", ticket["id"], "--as", "Alice", "--body", "Here it is.", "--attach", str(forged))
    assert code == 1 and "unsupported_media_type" in err
    code, out, err = desk.staff("reply", ticket["id"], "--as", "Alice", "--body", "Here it is.",
                                "--attach", str(invoice))
    assert code == 0, err
    reply = desk.ticket(ticket["id"])["messages"][-1]
    assert (reply["author"], reply["staff_name"]) == ("staff", "Alice")
    [attachment] = reply["attachments"]
    assert (attachment["filename"], attachment["content_type"]) == ("invoice-2026-11.pdf", "application/pdf")
    download = desk.get(f"/support/tickets/{ticket['id']}/attachments/{attachment['id']}")
    assert download.status_code == 200 and download.content == invoice.read_bytes()
    assert desk.get(f"/support/tickets/{ticket['id']}/attachments/{attachment['id']}", "bob").status_code == 404


def test_a_customer_cannot_attach_a_file_staff_uploaded(desk):
    ticket = desk.opened("Mixing uploads")
    with ClusterRpcProxy({"AMQP_URI": desk.amqp_uri}, timeout=30) as staff:
        staged = staff.support.staff_stage_attachment("notes.txt", "text/plain",
                                                      base64.b64encode(b"internal notes").decode())
    with ClusterRpcProxy({"AMQP_URI": desk.amqp_uri}, context_data={"user_id": "ann"}, timeout=30) as customer:
        with pytest.raises(ValidationFailed) as refused:
            customer.support.add_message(ticket["id"], "Look at this", [staged["upload_id"]])
    assert "attachments" in refused.value.fields
