"""Enter a container's network namespace on the calling thread.

setns(2) moves only the calling thread; sockets keep the namespace they were
opened in, so open them inside. The namespace is pinned by a file descriptor
before anything is compared or entered, so a recycled pid cannot swap it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from .errors import HookError

_CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    if hasattr(os, "setns"):  # Python 3.12+
        os.setns(fd, _CLONE_NEWNET)
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _open(path: str, what: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise HookError(f"{what} does not exist (did it exit?)") from None
    except OSError as exc:
        raise HookError(f"cannot open {path}: {exc.strerror}") from None


@contextlib.contextmanager
def entered(pid: int) -> Iterator[None]:
    """Run the body in the network namespace of `pid`, then come back.

    Refuses the caller's own namespace: a container started with
    `--network host` shares it, and changing it would change the host.
    """
    target = _open(f"/proc/{pid}/ns/net", f"process {pid}")
    try:
        own = _open("/proc/thread-self/ns/net", "own network namespace")
        try:
            mine, theirs = os.fstat(own), os.fstat(target)
            if (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino):
                raise HookError(f"process {pid} shares the hook's network namespace "
                                "(--network host?): refusing to change the host")
            try:
                _setns(target)
            except OSError as exc:
                raise HookError(f"cannot enter the network namespace of process {pid}: "
                                f"{exc.strerror}") from None
            try:
                yield
            finally:
                _setns(own)
        finally:
            os.close(own)
    finally:
        os.close(target)
