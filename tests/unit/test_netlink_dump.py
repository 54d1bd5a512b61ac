"""A netlink dump that the kernel marks interrupted (NLM_F_DUMP_INTR: the
table changed while it was read, e.g. podman connecting a network) is read
again, a bounded number of times. The socket is a stand-in that answers
with the kernel's framing: an empty rule dump, its DONE flagged or not."""

from __future__ import annotations

import struct

import pytest

from multihome_hook import netlink


class _Answers:
    """Each send gets the next answer: a DONE message, interrupted or not."""

    def __init__(self, interrupted: list[bool]) -> None:
        self.interrupted, self.sent = interrupted, 0
        self._seq = 0

    def send(self, data: bytes) -> int:
        self._seq = struct.unpack_from("=IHHII", data)[3]
        self.sent += 1
        return len(data)

    def recv(self, size: int) -> bytes:
        flags = netlink.NLM_F_DUMP_INTR if self.interrupted.pop(0) else 0
        return struct.pack("=IHHIIi", 20, netlink.NLMSG_DONE, flags, self._seq, 0, 0)

    def close(self) -> None:
        pass


def _socket(answers: _Answers) -> netlink.RouteSocket:
    sock = netlink.RouteSocket()
    sock._sock.close()
    sock._sock = answers  # type: ignore[assignment]
    return sock


def test_an_interrupted_dump_is_read_again() -> None:
    answers = _Answers([True, True, False])
    with _socket(answers) as sock:
        assert sock.rules() == []
    assert answers.sent == 3


def test_a_dump_interrupted_every_time_is_an_error() -> None:
    answers = _Answers([True] * netlink.DUMP_TRIES)
    with _socket(answers) as sock, pytest.raises(OSError, match="kept changing"):
        sock.rules()
    assert answers.sent == netlink.DUMP_TRIES
