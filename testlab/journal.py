"""Read what a program sends to syslog, without touching the host's /dev/log.

The program runs in a private mount namespace whose /dev is a fresh tmpfs
holding one socket, /dev/log, bound to a datagram socket of the test. This
machine has no journald: nothing else could show the hook's success lines;
on a machine that has one, the host's log is left alone all the same. The
host lab's crun (testlab/lab.py) points the /dev/log of the hooks it runs
at a Journal in the same way.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

_WITH_DEV_LOG = ('mount -t tmpfs tmpfs /dev && touch /dev/log && mount --bind "$0" /dev/log '
                 '&& exec "$@"')


class Journal:
    def __init__(self, sock: socket.socket, path: Path) -> None:
        self._sock, self._path = sock, path

    def run(self, argv: Sequence[str], stdin: str, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
        """Run `argv` with its syslog going here."""
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                               _WITH_DEV_LOG, str(self._path), *argv], input=stdin, text=True,
                              capture_output=True, timeout=30, env=env)

    def lines(self, tag: str) -> list[str]:
        """The messages logged under `tag` since the last call, without the
        syslog header ("<PRI>TIMESTAMP TAG[PID]: ")."""
        found: list[str] = []
        while True:
            try:
                data = self._sock.recv(65536).decode(errors="replace")
            except BlockingIOError:
                return found
            head, sep, message = data.partition(": ")
            if sep and f" {tag}[" in head:
                found.append(message.rstrip("\n\0"))


@contextlib.contextmanager
def listening(path: Path) -> Iterator[Journal]:
    """A Journal whose socket is `path` (removed again on exit): where a
    program's /dev/log is made to point."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        try:
            sock.setblocking(False)
            yield Journal(sock, path)
        finally:
            path.unlink()


@contextlib.contextmanager
def journal() -> Iterator[Journal]:
    with tempfile.TemporaryDirectory(prefix="mhlog.") as tmp, \
            listening(Path(tmp) / "log") as log:
        yield log
