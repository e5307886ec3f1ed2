"""The action log and live notifications (R-LOG-1/2, R-ASYNC-2): the real notify service and
two gateways on a real broker; operations come from a source service (here a stand-in
named "billing", which notify subscribes to like the real one) running real operations."""

from datetime import datetime, timedelta, timezone

import pytest
import requests
import sqlalchemy as sa
from nameko.standalone.rpc import ServiceRpcProxy

from common.contracts import integration_types
from common.db import create_engine
from common.messaging import reliable_event_handler
from common.operations import OperationFailed
from common.rpc import rpc
from common.service import PanelService
from common.service_schema import ServiceSchema
from deploy.components import migrate
from gateway.service import GatewayService
from gateway.sessions import SessionStore
from services.notify.service import NotifyService
from tests.support import StreamReader, free_port, store_of, wait_for

SOURCE_SCHEMA = ServiceSchema("billing")


class SourceService(PanelService):
    """Runs operations and publishes them like every service does."""

    name = "billing"
    schema = SOURCE_SCHEMA
    publishes = integration_types("billing")

    @rpc
    def start_job(self, target, fail=False):
        with self.store.transaction() as tx:
            return self.operations.request(tx, kind="billing.job", target=target, title=f"Job {target}",
                                           params={"fail": fail})

    @reliable_event_handler("billing", "operation_requested")
    def carry_out(self, payload):
        def work(view):
            if view["params"]["fail"]:
                raise OperationFailed("The payment provider refused.")
            return f"{view['target']} done", {}

        self.operations.run(payload["data"]["operation_id"], work)



class Setup:
    def __init__(self, amqp_uri, tmp_path, start_service):
        self.amqp_uri = amqp_uri
        self.start_service = start_service
        self.notify_url = f"sqlite:///{tmp_path / 'notify.db'}"
        source_url = f"sqlite:///{tmp_path / 'source.db'}"
        gateway_url = f"sqlite:///{tmp_path / 'gateway.db'}"
        migrate("notify", create_engine(self.notify_url))
        migrate("gateway", create_engine(gateway_url))
        SOURCE_SCHEMA.metadata.create_all(create_engine(source_url))
        self.source_config = dict(DATABASE_URL=source_url, DATABASE_CHECK_MIGRATED=False, METRICS_PORT="off",
                                  OUTBOX_POLL_SECONDS=0.2)
        self.sessions = SessionStore(create_engine(gateway_url))
        self.gateways = []
        for _ in range(2):
            port = free_port()
            start_service(GatewayService, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}", DATABASE_URL=gateway_url,
                          METRICS_PORT="off", SESSION_COOKIE_SECURE=False, LIVE_HEARTBEAT_SECONDS=0.5)
            self.gateways.append(f"http://127.0.0.1:{port}/api/v1")
        self.tokens = {}

    def start_notify(self):
        self.notify = self.start_service(NotifyService, DATABASE_URL=self.notify_url, METRICS_PORT="off",
                                         OUTBOX_POLL_SECONDS=0.2)
        return self.notify

    def start_source(self):
        self.source = self.start_service(SourceService, **self.source_config)
        return self.source

    def login(self, user_id, session_id):
        self.tokens[user_id], _ = self.sessions.create(session_id, user_id)

    def job(self, user_id, target, fail=False):
        context = {"user_id": user_id, "session_id": f"session-{user_id}"}
        with ServiceRpcProxy("billing", {"AMQP_URI": self.amqp_uri}, context_data=context) as source:
            return source.start_job(target, fail)

    def log(self, user_id, scope="all", gateway=0):
        return requests.get(f"{self.gateways[gateway]}/notifications", params={"scope": scope}, timeout=10,
                            headers={"Authorization": f"Bearer {self.tokens[user_id]}"}).json()

    def entries_for(self, user_id, operation_id):
        return [(i["level"], i["title"], i["body"]) for i in reversed(self.log(user_id)["items"])
                if i["operation_id"] == operation_id]


@pytest.fixture
def setup(amqp_uri, tmp_path, start_service):
    from common import topology

    topology.declare(amqp_uri, [NotifyService, SourceService])
    setup = Setup(amqp_uri, tmp_path, start_service)
    setup.login("ann", "session-ann")
    setup.login("bob", "session-bob")
    return setup


def test_an_operation_gives_its_owner_exactly_two_entries(setup):
    setup.start_notify()
    setup.start_source()
    operation = setup.job("ann", "invoice-7")
    wait_for(lambda: len(setup.entries_for("ann", operation["id"])) == 2, message="two entries")
    assert setup.entries_for("ann", operation["id"]) == [
        ("info", "Job invoice-7", "Started."), ("success", "Job invoice-7", "invoice-7 done")]
    assert setup.log("bob")["total"] == 0
    failed = setup.job("ann", "invoice-8", fail=True)
    wait_for(lambda: len(setup.entries_for("ann", failed["id"])) == 2, message="two entries")
    assert setup.entries_for("ann", failed["id"])[-1] == ("error", "Job invoice-8", "The payment provider refused.")


def test_session_scope_shows_this_sessions_entries_and_all_shows_history(setup):
    setup.start_notify()
    setup.start_source()
    operation = setup.job("ann", "x")
    wait_for(lambda: len(setup.entries_for("ann", operation["id"])) == 2, message="entries")
    assert setup.log("ann", scope="session")["total"] == 2
    setup.login("ann", "another-session")  # a new login: a new session, an empty session log
    assert setup.log("ann", scope="session")["total"] == 0
    assert setup.log("ann", scope="all")["total"] == 2


def test_the_action_log_pages_back_by_cursor_as_it_does_by_page(setup):
    setup.start_notify()
    setup.start_source()
    operations = [setup.job("ann", f"job-{n}") for n in range(3)]
    wait_for(lambda: setup.log("ann")["total"] == 6, message="six entries")
    bearer = {"Authorization": f"Bearer {setup.tokens['ann']}"}

    def page(**params):
        return requests.get(f"{setup.gateways[0]}/notifications", params={"scope": "all", "per_page": 4, **params},
                            headers=bearer, timeout=10).json()

    by_page = [item["id"] for n in (1, 2) for item in page(page=n)["items"]]
    first = page()
    by_cursor = [item["id"] for item in first["items"] + page(cursor=first["next_cursor"])["items"]]
    assert by_cursor == by_page and len(by_cursor) == 6 and len(operations) == 3
    assert page(cursor=first["next_cursor"])["next_cursor"] is None
    bad = requests.get(f"{setup.gateways[0]}/notifications", params={"cursor": "last"}, headers=bearer, timeout=10)
    assert bad.status_code == 400 and "cursor" in bad.json()["error"]["fields"]


def test_redelivered_events_change_nothing(setup):
    setup.start_notify()
    source = setup.start_source()
    operation = setup.job("ann", "x")
    wait_for(lambda: len(setup.entries_for("ann", operation["id"])) == 2, message="entries")
    # Publish the whole log again, as a relay that lost its checkpoint would.
    store = store_of(source)
    with store.transaction() as tx:
        tx.conn.execute(store.tables.relay_checkpoints.update().values(position=0))
    store.append("nudge", 0, [])  # nothing; the relay polls on its own
    wait_for(lambda: source_relay_caught_up(store), message="republished")
    # A new operation's events come after the republished ones on the same queue: once its
    # entries are there, the redeliveries were consumed too.
    later = setup.job("ann", "y")
    wait_for(lambda: len(setup.entries_for("ann", later["id"])) == 2, message="redeliveries consumed")
    assert len(setup.entries_for("ann", operation["id"])) == 2
    assert inbox_seen(store_of(setup.notify)) == 4  # x and y, started and finished: each once


def source_relay_caught_up(store):
    with store.engine.connect() as conn:
        checkpoint = conn.execute(sa.select(store.tables.relay_checkpoints.c.position)).scalar()
    return checkpoint == store.last_position()


def inbox_seen(store):
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(store.tables.inbox)).scalar()


def test_entries_made_while_notify_was_down_are_not_lost(setup):
    setup.start_source()
    operations = [setup.job("ann", f"job-{n}") for n in range(3)]
    wait_for(lambda: all(op_done(setup, op) for op in operations), message="operations finished")

    setup.start_notify()

    wait_for(lambda: setup.log("ann")["total"] == 6, message="six entries after notify started")


def op_done(setup, operation):
    with ServiceRpcProxy("billing", {"AMQP_URI": setup.amqp_uri},
                         context_data={"user_id": "ann"}) as source:
        return source.get_operation(operation["id"])["status"] == "succeeded"


def test_mark_read_and_unread_count(setup):
    setup.start_notify()
    setup.start_source()
    operation = setup.job("ann", "x")
    wait_for(lambda: len(setup.entries_for("ann", operation["id"])) == 2, message="entries")
    log = setup.log("ann")
    assert log["unread"] == 2
    bearer = {"Authorization": f"Bearer {setup.tokens['ann']}"}
    first = log["items"][0]["id"]
    assert requests.post(f"{setup.gateways[0]}/notifications/read", json={"ids": [first]}, headers=bearer,
                         timeout=10).status_code == 204
    assert setup.log("ann")["unread"] == 1
    assert requests.post(f"{setup.gateways[0]}/notifications/read", json={}, headers=bearer, timeout=10).status_code == 400
    requests.post(f"{setup.gateways[0]}/notifications/read", json={"all": True}, headers=bearer, timeout=10)
    assert setup.log("ann")["unread"] == 0


def test_each_customer_gets_only_their_own_events_on_whichever_gateway(setup):
    setup.start_notify()
    setup.start_source()
    ann_on_first = StreamReader(f"{setup.gateways[0]}/notifications/stream", setup.tokens["ann"])
    bob_on_second = StreamReader(f"{setup.gateways[1]}/notifications/stream", setup.tokens["bob"])
    ann_on_second = StreamReader(f"{setup.gateways[1]}/notifications/stream", setup.tokens["ann"])
    try:
        ann_job = setup.job("ann", "ann-job")
        bob_job = setup.job("bob", "bob-job")
        wait_for(lambda: len(ann_on_first.events) == 2 and len(bob_on_second.events) == 2
                 and len(ann_on_second.events) == 2, message="two events on each stream")
        for reader, job in ((ann_on_first, ann_job), (ann_on_second, ann_job), (bob_on_second, bob_job)):
            assert {e["data"]["operation_id"] for e in reader.events} == {job["id"]}
            assert [e["data"]["level"] for e in reader.events] == ["info", "success"]
            assert reader.events[0]["id"] < reader.events[1]["id"]
    finally:
        for reader in (ann_on_first, bob_on_second, ann_on_second):
            reader.close()


@pytest.mark.parametrize("in_query", [False, True], ids=["header", "query"])
def test_a_reconnecting_client_receives_what_it_missed(setup, in_query):
    setup.start_notify()
    setup.start_source()
    first = setup.job("ann", "first")
    wait_for(lambda: len(setup.entries_for("ann", first["id"])) == 2, message="entries")
    last_seen = max(item["position"] for item in setup.log("ann")["items"])
    second = setup.job("ann", "second")
    wait_for(lambda: len(setup.entries_for("ann", second["id"])) == 2, message="entries")

    reader = StreamReader(f"{setup.gateways[1]}/notifications/stream", setup.tokens["ann"], last_event_id=last_seen,
                          last_event_id_in_query=in_query)
    try:
        wait_for(lambda: len(reader.events) == 2, message="the two missed events")
        assert {e["data"]["operation_id"] for e in reader.events} == {second["id"]}
    finally:
        reader.close()


def test_a_stream_ends_when_its_session_ends_on_another_gateway(setup):
    setup.start_notify()
    setup.start_source()
    reader = StreamReader(f"{setup.gateways[1]}/notifications/stream", setup.tokens["ann"])
    try:
        first = setup.job("ann", "before-logout")
        wait_for(lambda: len(reader.events) == 2, message="the entries of the first job")
        setup.sessions.delete("session-ann")  # what a logout on the other gateway does
        wait_for(lambda: reader.finished, message="the stream to end")
        assert [e.get("type") for e in reader.events] == ["notification", "notification", "session_ended"]
        assert {e["data"]["operation_id"] for e in reader.events[:2]} == {first["id"]}
    finally:
        reader.close()


def test_checking_a_streams_session_does_not_keep_an_idle_session_alive(tmp_path):
    clock = [datetime(2026, 1, 1, tzinfo=timezone.utc)]
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    migrate("gateway", create_engine(url))
    store = SessionStore(create_engine(url), idle_seconds=600, now=lambda: clock[0])
    token, row = store.create("s-1", "ann")
    clock[0] += timedelta(seconds=500)
    assert store.alive("s-1")
    clock[0] += timedelta(seconds=200)  # 700 s since the login, the last use
    assert not store.alive("s-1")
    assert store.find(token) is None
    assert not store.alive("no-such-session")


def test_the_stream_needs_a_session(setup):
    assert requests.get(f"{setup.gateways[0]}/notifications/stream", timeout=10).status_code == 401
