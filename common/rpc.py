"""RPC between services: ``@rpc`` entrypoints and a client with a time limit per call.

**Calling** — ``TimedClusterRpcProxy`` injects ``cluster``: ``cluster.<service>.<method>(…)``
calls any service with a time limit (``timeout=`` of the provider, else the
``RPC_TIMEOUT_SECONDS`` config value, else 5 s); ``cluster.slow.<service>.<method>(…)``
uses ``RPC_SLOW_TIMEOUT_SECONDS`` (else 30 s), for commands that wait on the outside world;
``cluster.<service>.<method>.call(…, timeout=…)`` sets it per call. Past the limit the caller gets ``ServiceUnavailable`` — the
gateway's 503 — and the late reply, if it ever comes, is dropped. Calling a service that
has no queue (never started) is ``ServiceUnavailable`` at once. Remote errors arrive typed
(``PanelError`` subclasses keep code and extra; others are nameko's ``RemoteError``), and
the worker's call context (request, correlation, user and session ids: nameko's
``nameko.<key>`` headers) travels with every call. Underneath is ``common.rpc_client``:
nameko's wire protocol unchanged, but one connection, channel and reply queue per process,
requests pipelined from every greenthread, transient messages, no publisher confirms.
The same interface on nameko's own ``RpcProxy``, the baseline of ``bench.rpc``, lives in
``bench/nameko_cluster.py``.

**Answering** — ``rpc`` (``PanelRpc``) is nameko's ``@rpc`` with these changes:

- a ``PanelError`` (a refusal the caller is meant to see, such as not_found or
  invalid_credentials) is an expected exception: nameko does not log it as a crash;
- the service's RPC queue (nameko's: ``rpc-<service>``, bound to ``<service>.*``, prefetch
  ``max_workers``) is consumed by ``PanelRpcConsumer`` on one long-lived connection per
  service process, which also carries the replies: a request goes from the socket to its
  worker without kombu's consumer and nameko's extra greenthread, and the reply and the
  request's ack leave in **one** write;
- replies are sent **transient and without a publisher confirm**, instead of nameko's
  default (a pooled publisher per reply, persistent message, a confirm round trip per
  reply).

Why the reply change is safe: an RPC is answered now or it fails. The reply goes to the
caller's reply queue, which lives only as long as the caller does; persisting it to disk
protects nothing (after a broker restart no caller waits for it), and a confirm only tells
the *service* that the broker took it — the service cannot do anything useful with a nack
anyway (nameko just raises, the request is not re-run). If a reply is lost (connection
dropped at the wrong moment, broker crash), the caller's time limit ends the call with
``ServiceUnavailable`` (503) — the same outcome as a slow service, never a wrong answer:
every reply carries the ``correlation_id`` of its request and a caller only takes the reply
with its own. The command itself is not affected: its effects were committed by the
service before the reply was sent, and the request is acked only with (after) its reply,
as nameko does; a request whose connection was lost before its ack goes back to the queue.
Set ``RPC_TRANSIENT_REPLIES: false`` in a service's config to get nameko's own consumer
and replies back.

The parts: ``common.rpc_server`` (answering), ``common.rpc_client`` (calling), and
``common.amqp_link`` (the connection both keep open). Services import what they use from
here.
"""

from kombu import Connection

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "SLOW_TIMEOUT_SECONDS", "PanelRpc", "PanelRpcConsumer", "SignatureShapes",
           "TimedCluster", "TimedClusterRpcProxy", "broker_reachable", "rpc"]

from common.rpc_client import (
    DEFAULT_TIMEOUT_SECONDS,
    SLOW_TIMEOUT_SECONDS,
    TimedCluster,
    TimedClusterRpcProxy,
)
from common.rpc_server import PanelRpc, PanelRpcConsumer, SignatureShapes, rpc


def broker_reachable(amqp_uri, timeout):
    """True when a connection to the broker opens within ``timeout`` seconds."""
    try:
        with Connection(amqp_uri, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
        return True
    except Exception:  # any failure to connect means "not reachable"
        return False
