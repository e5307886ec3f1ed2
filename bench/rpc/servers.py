"""The child programs of ``bench.rpc``, each started as ``python -m bench.rpc <flag>``: the
servers of the floors and of the two lean references.

- ``run_echo_server`` (``--echo-server``) and ``run_lean_service`` (``--lean-service``):
  plain blocking kombu, no nameko, no eventlet (``__main__`` does not monkey-patch them);
- ``run_raw_gateway`` (``--raw-gateway``) and ``run_lean_gateway`` (``--lean-gateway``):
  eventlet's WSGI server, monkey-patched like the services.

Each serves until SIGTERM or Ctrl-C and returns exit code 0.
"""

import json
import signal
import uuid


def serve_replies(amqp_uri, queue, prefetch, answer, exchange=None):
    """Consume ``queue`` (a kombu ``Queue``) with plain blocking kombu until SIGTERM or
    Ctrl-C: publish ``answer(message)`` — (body, content type, content encoding) — to each
    message's ``reply_to`` on ``exchange`` (None: the default exchange) with its
    ``correlation_id``, then ack it."""
    from kombu import Connection, Consumer, Producer

    def stop(*_):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        channel.basic_qos(0, prefetch, False)
        producer = Producer(channel, exchange=exchange, auto_declare=False)

        def on_message(message):
            body, content_type, content_encoding = answer(message)
            producer.publish(
                body,
                routing_key=message.properties["reply_to"],
                correlation_id=message.properties.get("correlation_id"),
                content_type=content_type,
                content_encoding=content_encoding,
                retry=False,
            )
            message.ack()

        Consumer(channel, queues=[queue], on_message=on_message, no_ack=False).consume()
        try:
            while True:
                connection.drain_events()
        except (KeyboardInterrupt, SystemExit):
            pass  # Ctrl-C or SIGTERM: stop serving
    return 0


def run_echo_server(amqp_uri, queue, prefetch):
    """Reply to every message of ``queue`` with its own body, to its ``reply_to``."""
    from kombu import Queue

    return serve_replies(amqp_uri, Queue(queue, durable=False), prefetch,
                         lambda message: (message.body, message.content_type, message.content_encoding))


def run_lean_service(amqp_uri, service, prefetch):
    """Answer ``<service>.<method>`` as a nameko service would (its queue, binding and reply
    format: ``{"result": …, "error": null}`` to ``reply_to`` on the RPC exchange, transient),
    with plain blocking kombu: no nameko, no eventlet, no database."""
    from kombu import Exchange, Queue

    exchange = Exchange("nameko-rpc", type="topic", durable=True, auto_delete=False, delivery_mode=1)
    queue = Queue(f"rpc-{service}", exchange, routing_key=f"{service}.*", durable=True, auto_delete=False)
    body = json.dumps({"result": {"service": service, "status": "ok"}, "error": None})
    return serve_replies(amqp_uri, queue, prefetch, lambda message: (body, "application/json", "utf-8"),
                         exchange=exchange)


def serve_wsgi(port, app):
    """Serve ``app`` on 127.0.0.1:``port`` with eventlet's WSGI server (no access log) until
    SIGTERM or Ctrl-C."""
    import eventlet
    from eventlet import wsgi

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(0)))
    listener = eventlet.listen(("127.0.0.1", port))
    try:
        wsgi.server(listener, app, log_output=False)
    except (KeyboardInterrupt, SystemExit):
        pass  # Ctrl-C or SIGTERM: stop serving


def run_raw_gateway(amqp_uri, port, queue):
    """HTTP in, one raw AMQP request/reply to the echo server, its answer out: eventlet's
    WSGI server (the one nameko's ``@http`` runs on) without nameko, each request on a
    kombu client taken from a pool (one connection per concurrent request, as the floor
    client does). The floor of the HTTP -> gateway -> service -> reply path."""
    from eventlet.queue import LightQueue

    from bench.rpc.clients import RawClient

    idle = LightQueue()

    def app(environ, start_response):
        try:
            client = idle.get_nowait()
        except Exception:
            client = RawClient(amqp_uri, queue)
        try:
            body = client.call()
        finally:
            idle.put(client)
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    serve_wsgi(port, app)
    return 0


def run_lean_gateway(amqp_uri, port):
    """HTTP in, one RPC to ``auth.health`` through our ``RpcClient`` (with the call-context
    headers the gateway sends), its JSON out: eventlet's WSGI server and nothing else. No
    routing, no nameko worker, no werkzeug — a reference, not a gateway."""
    from common.rpc_client import RpcClient, context_headers

    client = RpcClient(amqp_uri, name="bench-lean-gateway").start()

    def app(environ, start_response):
        request_id = uuid.uuid4().hex
        try:
            result = client.call("auth", "health", headers=context_headers(
                {"request_id": request_id, "correlation_id": request_id}), timeout=5.0)
            status, body = "200 OK", json.dumps(result).encode()
        except Exception as error:  # reported to the bench client as a failed call
            status, body = "503 Service Unavailable", json.dumps({"error": str(error)}).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                ("X-Request-ID", request_id)])
        return [body]

    try:
        serve_wsgi(port, app)
    finally:
        client.stop()
    return 0
