"""The read-ahead of py-amqp's TCP transport (common/amqp_readahead.py): frames come out
exactly as py-amqp's own reads give them, whatever the socket hands over at a time, with
fewer receive calls, and a time-out in the middle of a frame loses nothing."""

import socket
import struct

import pytest
from amqp.transport import TCPTransport

from common import amqp_readahead


def frame(frame_type, channel, payload):
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + b"\xce"


FRAMES = [(1, 1, b"\x00<\x00<method"), (2, 1, b"header" * 3), (3, 1, b"x" * 5000), (8, 0, b"")]
WIRE = b"".join(frame(*f) for f in FRAMES)


class FakeSocket:
    """Hands over the bytes in the chunks given (``None``: a time-out), counting calls."""

    def __init__(self, chunks):
        self.chunks = list(chunks)
        self.calls = 0

    def recv(self, size):
        self.calls += 1
        chunk = self.chunks.pop(0)
        if chunk is None:
            raise socket.timeout()
        if len(chunk) > size:  # a real recv never returns more than asked
            self.chunks.insert(0, chunk[size:])
            chunk = chunk[:size]
        return chunk


def transport(chunks, read):
    found = TCPTransport.__new__(TCPTransport)
    found._read_buffer = b""
    fake = FakeSocket(chunks)
    found._quick_recv = fake.recv
    found.raise_on_initial_eintr = True
    found.connected = True
    found._read = read.__get__(found)
    return found, fake


def read_all(found, count):
    return [found.read_frame() for _ in range(count)]


@pytest.mark.parametrize("split", [1, 7, 100, 4096, len(WIRE)])
def test_frames_read_ahead_equal_py_amqps_own_with_fewer_receives(split):
    chunks = [WIRE[i:i + split] for i in range(0, len(WIRE), split)]
    ours, our_socket = transport(chunks, amqp_readahead._read)
    theirs, their_socket = transport(chunks, amqp_readahead.LIBRARY_READ)
    assert read_all(ours, len(FRAMES)) == read_all(theirs, len(FRAMES)) == FRAMES
    assert our_socket.calls <= their_socket.calls
    if split == len(WIRE):
        # py-amqp: header, payload (none for an empty one), end octet — per frame
        assert our_socket.calls == 1 and their_socket.calls == sum(3 if p else 2 for _, _, p in FRAMES)


def test_a_time_out_in_the_middle_of_a_frame_loses_nothing():
    cut = len(frame(*FRAMES[0])) + 10  # inside the second frame's payload
    ours, _ = transport([WIRE[:cut], None, WIRE[cut:]], amqp_readahead._read)
    assert ours.read_frame() == FRAMES[0]
    with pytest.raises(socket.timeout):
        ours.read_frame()
    assert read_all(ours, len(FRAMES) - 1) == FRAMES[1:]


def test_enable_installs_it_for_every_tcp_transport():
    amqp_readahead.enable()
    assert TCPTransport._read is amqp_readahead._read
