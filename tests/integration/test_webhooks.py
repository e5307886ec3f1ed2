"""Operation webhooks (issue 19) through the gateway, the real notify service and a real
broker, delivered to a real HTTP receiver on this machine (``tests/webhook_receiver.py``):
signed, at least once, retried after a 500 or a receiver too slow to answer, processed once
by a receiver that dedupes on the event id, delivered after notify restarts mid-retry, and
the endpoint marked failing (and the customer told) when nothing is accepted in time."""

import pytest
import requests

from tests.integration.test_notify import Setup, SourceService
from tests.support import wait_for
from tests.webhook_receiver import Receiver

FAST_RETRIES = dict(WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_ALLOW_HTTP=True, WEBHOOK_POLL_SECONDS=0.05, WEBHOOK_LEASE_SECONDS=2,
                    WEBHOOK_RETRY_FIRST_SECONDS=0.2, WEBHOOK_RETRY_MAX_SECONDS=0.4, WEBHOOK_TIMEOUT_SECONDS=0.5)


class WebhookSetup(Setup):
    def start_notify(self, **config):
        from services.notify.service import NotifyService

        settings = dict(FAST_RETRIES, WEBHOOK_SECRETS_KEY_FILE=str(self.key_file), **config)
        self.notify = self.start_service(NotifyService, DATABASE_URL=self.notify_url, METRICS_PORT="off",
                                         OUTBOX_POLL_SECONDS=0.1, **settings)
        return self.notify

    def api(self, method, path, user_id="ann", **kwargs):
        return requests.request(method, f"{self.gateways[0]}{path}", timeout=10,
                                headers={"Authorization": f"Bearer {self.tokens[user_id]}"}, **kwargs)

    def register(self, receiver, kinds=("operation_succeeded", "operation_failed"), user_id="ann"):
        answer = self.api("POST", "/webhooks", user_id, json={"url": receiver.url, "kinds": list(kinds)})
        assert answer.status_code == 201, answer.text
        receiver.secret = answer.json()["secret"]
        return answer.json()

    def deliveries(self, endpoint_id, user_id="ann"):
        return self.api("GET", f"/webhooks/{endpoint_id}/deliveries", user_id).json()["items"]


@pytest.fixture
def setup(amqp_uri, tmp_path, start_service):
    from common import topology
    from services.notify.service import NotifyService

    topology.declare(amqp_uri, [NotifyService, SourceService])
    setup = WebhookSetup(amqp_uri, tmp_path, start_service)
    setup.key_file = tmp_path / "webhook-secrets.key"
    setup.login("ann", "session-ann")
    setup.login("bob", "session-bob")
    return setup


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def test_a_finished_operation_is_posted_signed_once_to_its_owners_endpoint_only(setup, receiver):
    setup.start_notify()
    setup.start_source()
    created = setup.register(receiver)
    assert created["secret"].startswith("whsec_") and created["status"] == "active"
    assert "secret" not in setup.api("GET", f"/webhooks/{created['id']}").json()
    bobs = Receiver()
    try:
        setup.register(bobs, user_id="bob")
        done = setup.job("ann", "invoice-7")
        failed = setup.job("ann", "invoice-8", fail=True)
        wait_for(lambda: len(receiver.processed) == 2, message="two deliveries")
        kinds = {body["data"]["operation_id"]: body["type"] for body in receiver.processed.values()}
        assert kinds == {done["id"]: "operation_succeeded", failed["id"]: "operation_failed"}
        assert all(attempt["signed"] for attempt in receiver.attempts)
        assert all(attempt["event_id"] == attempt["body"]["id"] for attempt in receiver.attempts)
        assert bobs.attempts == []  # another customer's operations never reach bob
    finally:
        bobs.close()
    listed = setup.deliveries(created["id"])
    assert [(d["status"], d["attempts"], d["last_status_code"]) for d in listed] == [("delivered", 1, 200)] * 2


def test_a_500_and_a_timeout_are_retried_and_a_deduping_receiver_processes_once(setup, receiver):
    setup.start_notify()
    setup.start_source()
    endpoint = setup.register(receiver)
    receiver.answer_next(500, ("sleep", 1.0), 200)  # fails, is too slow (limit 0.5 s), then accepts
    operation = setup.job("ann", "invoice-9")
    wait_for(lambda: len(receiver.attempts) >= 3, timeout=20, message="three attempts")
    attempts = [a for a in receiver.attempts if a["body"]["data"]["operation_id"] == operation["id"]]
    assert [a["status"] for a in attempts][:1] == [500] and len(attempts) >= 3
    assert len({a["event_id"] for a in attempts}) == 1  # every attempt is the same event
    assert len(receiver.processed) == 1
    delivery = wait_for(lambda: [d for d in setup.deliveries(endpoint["id"]) if d["status"] == "delivered"],
                        message="the delivery listed as delivered")[0]
    assert delivery["attempts"] >= 3
    assert attempts[-1]["at"] - attempts[0]["at"] >= 0.2  # waited before retrying


def test_deliveries_survive_a_restart_of_notify_mid_retry(setup, receiver):
    notify = setup.start_notify(WEBHOOK_RETRY_FIRST_SECONDS=1.5, WEBHOOK_RETRY_MAX_SECONDS=1.5)
    setup.start_source()
    endpoint = setup.register(receiver)
    receiver.answer_next(503)
    operation = setup.job("ann", "invoice-10")
    wait_for(lambda: [d["attempts"] for d in setup.deliveries(endpoint["id"])] == [1], message="the first attempt")
    notify.kill()  # between the failed attempt and its retry
    assert not receiver.processed
    setup.start_notify()
    wait_for(lambda: receiver.processed, timeout=20, message="delivered after the restart")
    assert [body["data"]["operation_id"] for body in receiver.processed.values()] == [operation["id"]]
    assert [d["status"] for d in setup.deliveries(endpoint["id"])] == ["delivered"]


def test_order_independence_each_event_carries_what_a_receiver_needs(setup, receiver):
    setup.start_notify()
    setup.start_source()
    setup.register(receiver)
    operations = [setup.job("ann", f"job-{n}") for n in range(5)]
    wait_for(lambda: len(receiver.processed) == 5, message="five deliveries")
    for body in receiver.processed.values():
        assert set(body) == {"id", "type", "created_at", "data"}
        assert body["data"]["status"] in ("succeeded", "failed") and body["data"]["finished_at"]
    assert {body["data"]["operation_id"] for body in receiver.processed.values()} == {op["id"] for op in operations}


def test_an_endpoint_accepting_nothing_for_the_give_up_time_is_marked_failing_and_the_customer_told(setup, receiver):
    setup.start_notify(WEBHOOK_GIVE_UP_SECONDS=1.5)
    setup.start_source()
    endpoint = setup.register(receiver)
    receiver.answer_next(*[500] * 100)
    setup.job("ann", "invoice-11")
    wait_for(lambda: setup.api("GET", f"/webhooks/{endpoint['id']}").json()["status"] == "failing", timeout=20,
             message="the endpoint failing")
    assert [d["status"] for d in setup.deliveries(endpoint["id"])] == ["failed"]
    titles = [item["title"] for item in setup.log("ann")["items"]]
    assert "Webhook endpoint failing" in titles
    receiver.script.clear()
    test = setup.api("POST", f"/webhooks/{endpoint['id']}/test")
    assert test.status_code == 202 and test.json()["kind"] == "webhook_test"
    wait_for(lambda: setup.api("GET", f"/webhooks/{endpoint['id']}").json()["status"] == "active", timeout=20,
             message="recovered by a delivery that got through")
    assert receiver.of_kind("webhook_test")


def test_bad_endpoints_are_refused_naming_the_field_and_others_are_404(setup, receiver):
    setup.start_notify(WEBHOOK_ALLOW_PRIVATE=False, WEBHOOK_ALLOW_HTTP=False)
    private = setup.api("POST", "/webhooks", json={"url": "https://127.0.0.1:9/hooks", "kinds": ["operation_failed"]})
    assert private.status_code == 400 and "127.0.0.1" in private.json()["error"]["fields"]["url"][0]
    plain = setup.api("POST", "/webhooks", json={"url": "http://example.com/hooks", "kinds": ["operation_failed"]})
    assert plain.status_code == 400 and plain.json()["error"]["fields"]["url"] == ["Must use https."]
    unknown = setup.api("POST", "/webhooks", json={"url": "https://example.com/h", "kinds": ["reboot"]})
    assert unknown.status_code == 400 and "kinds" in unknown.json()["error"]["fields"]
    assert setup.api("GET", "/webhooks/we_nope").status_code == 404


def test_another_customers_endpoint_is_a_404_and_a_deleted_one_hears_nothing(setup, receiver):
    setup.start_notify()
    setup.start_source()
    endpoint = setup.register(receiver)
    assert setup.api("GET", f"/webhooks/{endpoint['id']}", "bob").status_code == 404
    assert setup.api("DELETE", f"/webhooks/{endpoint['id']}", "bob").status_code == 404
    assert setup.api("DELETE", f"/webhooks/{endpoint['id']}").status_code == 204
    assert setup.api("GET", "/webhooks").json()["items"] == []
    setup.job("ann", "after-delete")
    marker = Receiver()
    try:
        setup.register(marker)  # a new endpoint: the next operation reaches it, never the deleted one
        setup.job("ann", "marker")
        wait_for(lambda: marker.processed, message="the marker delivery")
    finally:
        marker.close()
    assert receiver.attempts == []
