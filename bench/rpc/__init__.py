"""RPC round trips: a raw AMQP floor, nameko RPC, our RPC client, and HTTP through the gateway.

    python -m bench.rpc [--seconds 5] [--warmup 1] [--concurrency 1,10,50]

On a RabbitMQ vhost of its own (created and deleted through the management API) it starts,
each as an OS process of its own:

- an echo server (``python -m bench.rpc --echo-server``): plain kombu, no nameko, no
  eventlet; replies to every message of its queue through RabbitMQ direct reply-to;
- the real ``auth`` service (``nameko run``, SQLite database in a temporary folder), whose
  ``@rpc`` entrypoints are served by ``common.rpc_server.PanelRpcConsumer`` (transient,
  unconfirmed replies sent together with the request's ack);
- the same service as ``authnameko`` (``bench.nameko_auth``) with
  ``RPC_TRANSIENT_REPLIES: false``: nameko's own consumer and default replies, for the
  plain-nameko baseline;
- the gateway with two extra routes, ``GET /bench/rpc`` (one RPC to ``auth`` through our
  client) and ``GET /bench/rpc-nameko`` (one RPC to ``authnameko`` through nameko's
  ``RpcProxy``) (``bench.gateway_probe:BenchGateway``).

and measures, at each concurrency, for a fixed time after a warm-up:

    raw-amqp         kombu request/reply via amq.rabbitmq.reply-to to the echo server
    nameko-rpc       ClusterRpcProxy -> authnameko.health (one SQLite read in the service)
    panel-rpc        common.rpc_client.RpcClient (one for all greenthreads) -> auth.health
    panel-rpc-lean   the same client -> ``authlean.health`` on a lean responder (``python -m
                     bench.rpc --lean-service``: plain kombu, no nameko, no eventlet, answers
                     nameko's wire protocol): the gap from it to panel-rpc is what the
                     service's framework costs (nameko's worker, eventlet, the SQLite read)
    http-raw         GET on a raw HTTP forwarder (``python -m bench.rpc --raw-gateway``:
                     eventlet's WSGI server, no nameko, a pool of kombu clients) -> the echo
                     server: the floor of the whole HTTP -> gateway -> service -> reply path
    http-healthz     GET /healthz on the gateway (no RPC: the gateway's HTTP floor)
    http-lean        GET on a lean gateway (``python -m bench.rpc --lean-gateway``: eventlet's
                     WSGI server and our ``RpcClient``, no nameko, no werkzeug) -> auth.health:
                     the lowest any gateway on our RPC path and service could go; the gap
                     from it to http-rpc is what the gateway's framework costs (werkzeug,
                     nameko's worker lifecycle, our route handling)
    http-rpc-nameko  GET /bench/rpc-nameko: gateway -> nameko RpcProxy -> authnameko.health
    http-rpc         GET /bench/rpc: gateway -> our client -> auth.health

The clients are eventlet greenthreads of this process (monkey-patched by ``__main__``), one
connection each (except ``panel-rpc``: one client, one connection, shared by all). Every
child is stopped and the vhost deleted at the end, also on Ctrl-C.

The package, one module per job:

    __main__   the command line: the run (vhost, stack, one row per path and concurrency,
               report, clean-up), or one child program behind its hidden flag
    servers    the child programs: echo server, lean service, raw HTTP forwarder, lean gateway
    clients    one client kind per path (kombu, nameko's proxy, our RpcClient, HTTP)
    stack      the processes a run starts and waits for, and which client and processes
               make each path
    load       one row: the greenthreads' calls, their percentiles, the CPU of each side
    report     the table, the ratios against both floors, the comparison with nameko, the
               aims, and the final JSON line

This module holds only the names several of them share; it imports nothing, so
``__main__`` can read the flags before it decides whether to monkey-patch.
"""

PATHS = ("raw-amqp", "nameko-rpc", "panel-rpc-lean", "panel-rpc", "http-raw", "http-healthz", "http-lean",
         "http-rpc-nameko", "http-rpc")

# The hidden flags that make ``python -m bench.rpc`` one of the child programs (``servers``).
ECHO_FLAG = "--echo-server"
RAW_GATEWAY_FLAG = "--raw-gateway"
LEAN_GATEWAY_FLAG = "--lean-gateway"
LEAN_SERVICE_FLAG = "--lean-service"

ECHO_QUEUE = "bench-echo"
ECHO_PREFETCH = 100
LEAN_SERVICE = "authlean"
