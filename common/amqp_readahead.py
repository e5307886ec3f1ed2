"""Fewer system calls per AMQP frame: py-amqp's TCP transport reads each frame with three
``recv`` calls of exactly the bytes it needs next (the 7-byte header, the payload, the end
octet), so one small message (method, header and body frames) costs nine ``recv`` calls,
each a trip through eventlet's green socket. ``enable()`` makes it read what is there, up
to ``READ_AHEAD_BYTES``, and serve the next reads from that buffer: usually one ``recv``
per message, or per burst of messages.

Only the transport's ``_read`` changes; its buffer (``_read_buffer``) keeps its meaning,
so py-amqp's own handling of a time-out in the middle of a frame (it puts what it read
back in front of the buffer) still holds. The buffer is a ``bytearray`` consumed from a
read position, so a burst of many small frames is not copied once per frame.
"""

import errno
import socket

from amqp import transport

READ_AHEAD_BYTES = 16384
_RETRY = (errno.EAGAIN, errno.EINTR)
# py-amqp's own, for what must measure the library as it ships (the benchmarks' floors).
LIBRARY_READ = transport.TCPTransport._read


def _read(self, n, initial=False):
    """Exactly ``n`` bytes from the peer (``TCPTransport._read``), reading ahead."""
    rbuf = self._read_buffer
    if not isinstance(rbuf, bytearray):  # py-amqp put bytes back in front (a time-out)
        rbuf = bytearray(rbuf)
    try:
        while len(rbuf) < n:
            try:
                chunk = self._quick_recv(max(n - len(rbuf), READ_AHEAD_BYTES))
            except OSError as exc:
                if exc.errno in _RETRY:
                    if initial and self.raise_on_initial_eintr:
                        raise socket.timeout()
                    continue
                raise
            if not chunk:
                raise OSError("Server unexpectedly closed connection")
            rbuf += chunk
    except BaseException:
        self._read_buffer = rbuf
        raise
    result = bytes(rbuf[:n])
    del rbuf[:n]
    self._read_buffer = rbuf
    return result


def enable():
    """Install the read-ahead ``_read`` on py-amqp's plain TCP transport (idempotent)."""
    transport.TCPTransport._read = _read


def use_library_read(amqp_transport):
    """Give one connection's transport py-amqp's own ``_read`` back."""
    amqp_transport._read = LIBRARY_READ.__get__(amqp_transport)
