"""The auth service under another name, for ``bench.rpc``'s plain-nameko baseline.

Run with a config that sets ``RPC_TRANSIENT_REPLIES: false``, so that its ``@rpc``
entrypoints are consumed and answered the way nameko does by default (nameko's
``RpcConsumer``; a pooled publisher per reply, persistent message, publisher confirm):
``bench.rpc`` writes that config next to its logs.
"""

from services.auth.service import AuthService


class NamekoAuth(AuthService):
    name = "authnameko"
