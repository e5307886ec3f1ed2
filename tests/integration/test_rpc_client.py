"""The lean RPC client (``common.rpc_client``, injected by ``TimedClusterRpcProxy``) and the
service side of ``PanelRpc`` (``PanelRpcConsumer``: its queue, transient replies sent with
the request's ack), against a real RabbitMQ (a vhost per test).

Services here keep plain ``@rpc`` entrypoints (nameko's own and ours): the client speaks
nameko's wire protocol unchanged.
"""

import random
import string
import time

import eventlet
import eventlet.event
import pytest
import requests
from kombu import Connection, Exchange, Producer, Queue
from nameko.exceptions import MethodNotFound, RemoteError
from nameko.rpc import RpcConsumer
from nameko.rpc import rpc as nameko_rpc
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_hook

from common import context
from common.errors import (
    Conflict,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    error_with_code,
)
from common.rpc import PanelRpcConsumer, TimedClusterRpcProxy, rpc
from common.amqp_link import AmqpLink, LinkDown
from common.rpc_client import RpcClient
from common.service import CallContext
from tests.conftest import RABBIT_API, RABBIT_AUTH, queue_depth
from tests.support import wait_for


class Echo:
    """A service with our ``@rpc`` (transient replies) and nameko's plain one."""

    name = "echo"
    call_context = CallContext()

    @rpc
    def echo(self, payload, delay=0):
        if delay:
            eventlet.sleep(delay)
        return payload

    @nameko_rpc
    def plain_echo(self, payload):
        return payload

    @rpc
    def whoami(self):
        return dict(context.current())

    @rpc
    def missing(self):
        raise NotFound("no such server", extra={"server_id": "SRV-1"})

    @rpc
    def broke(self):
        raise error_with_code(Conflict, "insufficient_funds", "Your balance is too low.")

    @rpc
    def throttled(self):
        raise RateLimited("Too many attempts.", retry_after=30)

    @rpc
    def crashes(self):
        raise ValueError("internal detail")

    @rpc
    def slow(self, seconds):
        eventlet.sleep(seconds)
        return "late"


class Caller:
    """A service that calls another one, as the gateway does."""

    name = "caller"
    cluster = TimedClusterRpcProxy(timeout=2)

    @rpc
    def relay(self, service, method, *args, **kwargs):
        return getattr(getattr(self.cluster, service), method)(*args, **kwargs)

    @rpc
    def relay_with_limit(self, service, method, limit, *args):
        return getattr(getattr(self.cluster, service), method).call(*args, timeout=limit)


@pytest.fixture
def client(amqp_uri):
    with RpcClient(amqp_uri, name="test") as rpc_client:
        yield rpc_client


def vhost_of(amqp_uri):
    return amqp_uri.rsplit("/", 1)[1]


def connections_named(amqp_uri, prefix):
    """Names of this vhost's connections whose client-provided name starts with ``prefix``
    (only ours: other people share this broker), as the management API lists them (it
    learns of a new connection a few seconds late)."""
    answer = requests.get(f"{RABBIT_API}/vhosts/{vhost_of(amqp_uri)}/connections", auth=RABBIT_AUTH, timeout=10)
    answer.raise_for_status()
    return [c["name"] for c in answer.json()
            if (c.get("client_properties") or {}).get("connection_name", "").startswith(prefix)]


def close_connections(names):
    for name in names:
        requests.delete(f"{RABBIT_API}/connections/{requests.utils.quote(name, safe='')}",
                        auth=RABBIT_AUTH, timeout=10).raise_for_status()
    return len(names)


def close_connections_named(amqp_uri, prefix):
    """Close the connections ``connections_named`` finds (waiting until it finds one)."""
    names = wait_for(lambda: connections_named(amqp_uri, prefix),
                     message=f"a connection named {prefix!r} in the management API")
    return close_connections(names)


def test_context_headers_reach_the_service_through_the_injected_cluster(start_service):
    start_service(Echo)
    caller = start_service(Caller)
    ids = {"request_id": "req-1", "correlation_id": "corr-1", "user_id": "user-7", "session_id": "sess-3"}
    with entrypoint_hook(caller, "relay", context_data=ids) as relay:
        assert relay("echo", "whoami") == ids
        assert relay("echo", "echo", {"n": [1, 2.5, "x", None]}) == {"n": [1, 2.5, "x", None]}
        assert relay("echo", "plain_echo", payload="kw") == "kw"


def test_many_concurrent_callers_each_get_their_own_answer(start_service, client):
    """Replies come back in a scrambled order (random delays in the service) and with sizes
    from a few bytes to beyond one AMQP frame; every caller must get exactly its answer."""
    start_service(Echo, max_workers=50)
    rng = random.Random(11)
    sizes = [0, 1, 10, 100, 1000, 20_000, 200_000]

    def payload(index):
        size = rng.choice(sizes)
        text = "".join(rng.choices(string.ascii_letters, k=min(size, 64))) * (size // 64 + 1)
        return {"index": index, "text": text[:size], "nested": {"i": index, "list": list(range(index % 7))}}

    calls = [(payload(i), rng.choice([0, 0, 0.001, 0.005, 0.02])) for i in range(600)]
    wrong = []

    def one(item):
        sent, delay = item
        answer = client.call("echo", "echo", (sent,), {"delay": delay}, timeout=20)
        if answer != sent:
            wrong.append((sent["index"], answer.get("index") if isinstance(answer, dict) else answer))
        return sent["index"]

    pool = eventlet.GreenPool(200)
    done = list(pool.imap(one, calls))
    assert done == list(range(600))
    assert wrong == []


@pytest.mark.parametrize("method, error_cls, code", [
    ("missing", NotFound, "not_found"),
    ("broke", Conflict, "insufficient_funds"),
    ("throttled", RateLimited, "rate_limited"),
])
def test_remote_panel_errors_arrive_typed_with_code_and_extra(start_service, client, method, error_cls, code):
    start_service(Echo)
    with pytest.raises(error_cls) as raised:
        client.call("echo", method, timeout=5)
    assert raised.value.code == code
    assert raised.value.message
    if method == "missing":
        assert raised.value.extra["server_id"] == "SRV-1"
    if method == "throttled":
        assert raised.value.retry_after == 30


def test_other_remote_errors_arrive_as_nameko_sends_them(start_service, client):
    start_service(Echo)
    with pytest.raises(RemoteError) as raised:
        client.call("echo", "crashes", timeout=5)
    assert raised.value.exc_type == "ValueError"
    with pytest.raises(MethodNotFound):  # registered by nameko itself: typed
        client.call("echo", "no_such_method", timeout=5)


def test_a_service_that_never_started_is_unavailable_at_once(client):
    began = time.monotonic()
    with pytest.raises(ServiceUnavailable) as raised:
        client.call("ghost", "health", timeout=5)
    assert time.monotonic() - began < 1
    assert raised.value.code == "unavailable"
    assert "not running" in raised.value.message


def test_a_slow_service_is_unavailable_within_the_time_limit_and_its_late_reply_is_dropped(start_service, client):
    start_service(Echo)
    began = time.monotonic()
    with pytest.raises(ServiceUnavailable):
        client.call("echo", "slow", (1.0,), timeout=0.3)
    assert 0.3 <= time.monotonic() - began < 0.8
    eventlet.sleep(1.0)  # the late reply arrives meanwhile and is dropped
    assert client.call("echo", "echo", ("next",), timeout=5) == "next"
    assert client._pending == {}


def test_a_stopped_service_is_unavailable_in_time_and_its_request_expires_unprocessed(start_service, client):
    echo = start_service(Echo)
    assert client.call("echo", "echo", ("up",), timeout=5) == "up"
    echo.stop()  # its durable queue stays, nobody consumes it
    began = time.monotonic()
    with pytest.raises(ServiceUnavailable):
        client.call("echo", "echo", ("down",), timeout=0.5)
    assert time.monotonic() - began < 1.0
    # The request carried the call's time limit as its TTL: the broker drops it.
    wait_for(lambda: queue_depth(client.link.amqp_uri, "rpc-echo") == 0, timeout=5,
             message="the expired request to leave the queue")


def test_the_injected_cluster_honours_a_per_call_limit(start_service):
    start_service(Echo)
    caller = start_service(Caller)
    with entrypoint_hook(caller, "relay_with_limit") as relay:
        began = time.monotonic()
        with pytest.raises(ServiceUnavailable):
            relay("echo", "slow", 0.2, 2)
        assert time.monotonic() - began < 1.5
        assert relay("echo", "slow", 3, 0.1) == "late"


def test_requests_and_replies_are_transient_and_keep_nameko_headers(amqp_uri, start_service, client):
    """On the wire: a request as nameko's (plus transient + TTL), and a PanelRpc reply
    transient with the request's correlation id, readable by any nameko caller."""
    start_service(Echo)
    exchange = Exchange("nameko-rpc", type="topic", durable=True)
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        spy = Queue("spy-requests", exchange=exchange, routing_key="spy.*", durable=False)(channel)
        spy.declare()
        replies = Queue("spy-replies", exchange=exchange, routing_key="spy-reply-key", durable=False)(channel)
        replies.declare()

        def unanswered():
            with pytest.raises(ServiceUnavailable):  # nobody answers the spy
                client.call("spy", "look", (1,), {"b": 2}, headers={"nameko.user_id": "u-1"}, timeout=2)

        waiting = eventlet.spawn(unanswered)
        request = wait_for(lambda: spy.get(no_ack=True), message="the request")
        waiting.wait()
        assert request.payload == {"args": [1], "kwargs": {"b": 2}}
        assert request.delivery_info["routing_key"] == "spy.look"
        assert request.properties["delivery_mode"] == 1
        assert request.headers == {"nameko.user_id": "u-1"}
        assert request.properties["reply_to"] == client.reply_routing_key
        assert request.properties["expiration"] == "2000"
        assert request.content_type == "application/json"

        Producer(channel).publish(
            {"args": ["hi"], "kwargs": {}}, exchange=exchange, routing_key="echo.echo",
            reply_to="spy-reply-key", correlation_id="corr-xyz", serializer="json",
        )
        reply = wait_for(lambda: replies.get(no_ack=True), message="the reply")
        assert reply.payload == {"result": "hi", "error": None}
        assert reply.properties["correlation_id"] == "corr-xyz"
        assert reply.properties["delivery_mode"] == 1


def consumers_of(container):
    return [type(extension) for extension in container.extensions if isinstance(extension, RpcConsumer)]


def test_transient_replies_off_serves_the_same_entrypoints_with_nameko_own_consumer(amqp_uri, start_service,
                                                                                    client):
    """``RPC_TRANSIENT_REPLIES: false``: nameko's ``RpcConsumer`` (persistent replies) serves
    our ``@rpc`` and nameko's alike; by default our ``PanelRpcConsumer`` does."""
    assert consumers_of(start_service(Echo)) == [PanelRpcConsumer]
    with_nameko = start_service(type("EchoNameko", (Echo,), {"name": "echonameko"}), RPC_TRANSIENT_REPLIES=False)
    assert consumers_of(with_nameko) == [RpcConsumer]
    assert client.call("echonameko", "echo", ({"a": 1},), timeout=5) == {"a": 1}
    assert client.call("echonameko", "plain_echo", ("plain",), timeout=5) == "plain"
    with pytest.raises(NotFound):
        client.call("echonameko", "missing", timeout=5)

    exchange = Exchange("nameko-rpc", type="topic", durable=True)
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        replies = Queue("spy-replies-off", exchange=exchange, routing_key="spy-reply-off", durable=False)(channel)
        replies.declare()
        Producer(channel).publish({"args": ["hi"], "kwargs": {}}, exchange=exchange, routing_key="echonameko.echo",
                                  reply_to="spy-reply-off", correlation_id="corr-off", serializer="json")
        reply = wait_for(lambda: replies.get(no_ack=True), message="the reply")
        assert reply.payload == {"result": "hi", "error": None}
        assert reply.properties["correlation_id"] == "corr-off"
        assert reply.properties["delivery_mode"] == 2  # nameko's persistent reply


def test_nameko_standalone_callers_still_read_transient_replies(amqp_uri, start_service):
    start_service(Echo)
    with ServiceRpcProxy("echo", {"AMQP_URI": amqp_uri}, timeout=5) as echo:
        assert echo.echo({"a": 1}) == {"a": 1}
        with pytest.raises(NotFound):
            echo.missing()


def test_the_client_reconnects_by_itself_after_its_connection_is_closed(amqp_uri, start_service, client):
    start_service(Echo)
    assert client.call("echo", "echo", ("before",), timeout=5) == "before"

    assert close_connections_named(amqp_uri, client.connection_name) == 1

    wait_for(lambda: client.link.connects == 2, message="the client to reconnect")
    assert client.call("echo", "echo", ("after",), timeout=5) == "after"


def test_calls_during_an_outage_fail_in_time_or_succeed_and_later_calls_succeed(amqp_uri, start_service, client):
    """Both ends lose their connection (the client's and the service's RPC connection, which carries its requests and replies)
    while calls are in flight: every call ends within its limit, with its own answer or a
    503, and calls after the outage succeed."""
    start_service(Echo, max_workers=20)
    outcomes = []

    def caller(index):
        for round_ in range(30):
            sent = f"{index}-{round_}"
            began = time.monotonic()
            try:
                answer = client.call("echo", "echo", (sent,), {"delay": 0.01}, timeout=1)
                outcomes.append(("ok", answer == sent, time.monotonic() - began))
            except ServiceUnavailable:
                outcomes.append(("unavailable", True, time.monotonic() - began))

    pool = eventlet.GreenPool()
    for index in range(10):
        pool.spawn(caller, index)
    eventlet.sleep(0.1)
    close_connections_named(amqp_uri, client.connection_name)
    close_connections_named(amqp_uri, "rpc-server echo")
    pool.waitall()

    assert all(correct for _, correct, _ in outcomes)  # never someone else's answer
    assert max(elapsed for _, _, elapsed in outcomes) < 1.5
    assert client.call("echo", "echo", ("after",), timeout=5) == "after"


class Tally:
    """Counts how often each request really ran (at most once per delivery)."""

    name = "tally"
    runs = []
    started = None  # an Event sent when ``hold`` starts

    @rpc
    def count(self, token):
        Tally.runs.append(token)
        return token

    @rpc
    def hold(self, seconds):
        Tally.runs.append("hold")
        if not Tally.started.ready():
            Tally.started.send(True)
        eventlet.sleep(seconds)
        return "held"


@pytest.fixture
def tally():
    Tally.runs = []
    Tally.started = eventlet.event.Event()
    return Tally


def test_every_request_runs_once_and_is_acked_with_its_reply(amqp_uri, start_service, client, tally):
    """Reply and ack leave together: after many concurrent calls and a graceful stop,
    nothing is left unacked (an unacked request would go back to the queue) and no request
    ran twice."""
    service = start_service(tally, max_workers=10)
    tokens = [f"t{index}" for index in range(200)]
    pool = eventlet.GreenPool(20)
    answers = list(pool.imap(lambda token: client.call("tally", "count", (token,), timeout=5), tokens))
    assert answers == tokens
    service.stop()
    assert queue_depth(amqp_uri, "rpc-tally") == 0
    assert sorted(tally.runs) == sorted(tokens)


def test_a_stopping_service_finishes_its_calls_and_leaves_new_ones_queued_for_another_replica(
        amqp_uri, start_service, client, tally):
    first = start_service(tally)
    holding = eventlet.spawn(client.call, "tally", "hold", (0.5,), timeout=5)
    tally.started.wait()
    stopping = eventlet.spawn(first.stop)
    wait_for(lambda: _consumer_cancelled(first), message="the stopping service to cancel its consumer")
    # Sent after the cancel: should it still reach the stopping replica, that one puts it back.
    later = eventlet.spawn(client.call, "tally", "count", ("later",), timeout=5)
    assert holding.wait() == "held"  # the running call finished and was answered
    stopping.wait()
    assert tally.runs == ["hold"]  # the later request waited in the queue, untouched
    start_service(tally)  # another replica takes it
    assert later.wait() == "later"
    assert tally.runs == ["hold", "later"]


def test_a_request_whose_connection_drops_before_its_ack_is_not_lost(amqp_uri, start_service, client, tally):
    """As with nameko: the request goes back to the queue and runs again once the service
    has reconnected (at least once); the caller gets its answer."""
    start_service(tally)
    service_connection = wait_for(lambda: connections_named(amqp_uri, "rpc-server tally"),
                                  message="the service's connection in the management API")
    holding = eventlet.spawn(client.call, "tally", "hold", (0.5,), timeout=5)
    tally.started.wait()
    assert close_connections(service_connection) == 1  # while the request runs, unacked
    assert holding.wait() == "held"
    wait_for(lambda: tally.runs == ["hold", "hold"], message="the request to run again")
    assert client.call("tally", "count", ("after",), timeout=5) == "after"
    assert queue_depth(amqp_uri, "rpc-tally") == 0


def _consumer_cancelled(container):
    consumer = container.shared_extensions.get(RpcConsumer)  # PanelRpcConsumer shares its key
    return consumer is not None and consumer._consumer is None


def test_unknown_methods_and_unreadable_requests_get_error_replies(amqp_uri, start_service, client):
    start_service(Echo)
    with pytest.raises(MethodNotFound):
        client.call("echo", "no_such_method", timeout=5)
    exchange = Exchange("nameko-rpc", type="topic", durable=True)
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        replies = Queue("spy-replies", exchange=exchange, routing_key="spy-reply-key", durable=False)(channel)
        replies.declare()
        Producer(channel).publish(b"{not json", exchange=exchange, routing_key="echo.echo", reply_to="spy-reply-key",
                                  correlation_id="corr-bad", content_type="application/json",
                                  content_encoding="utf-8")
        reply = wait_for(lambda: replies.get(no_ack=True), message="the error reply")
        assert reply.payload["result"] is None
        assert reply.payload["error"]["exc_type"] == "MalformedRequest"
        assert reply.properties["correlation_id"] == "corr-bad"
    assert client.call("echo", "echo", ("still up",), timeout=5) == "still up"
    assert queue_depth(amqp_uri, "rpc-echo") == 0


def test_stopping_a_link_that_never_connected_wakes_whoever_waits_for_it():
    """A service starting while the broker is unreachable waits for its connection; being
    stopped (or killed) meanwhile must end that wait instead of hanging the shutdown."""
    link = AmqpLink("amqp://guest:guest@127.0.0.1:1//", "nowhere", connect_timeout=0.2).start()
    waiting = eventlet.spawn(link.wait_connected)
    link.stop()
    with pytest.raises(LinkDown), eventlet.Timeout(5):  # (a hang fails the test, not CI)
        waiting.wait()
