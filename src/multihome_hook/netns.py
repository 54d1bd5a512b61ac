"""Enter a container's network namespace.

setns(2) moves only the calling thread; sockets keep the namespace they were
opened in, so open them after entering. The namespace is pinned by a file
descriptor before anything is compared or entered, so a recycled pid cannot
swap it. Nothing here ever goes back: under rootless podman the way into the
container's namespace (from its user namespace) is open, the way back to the
host's is not. The hook enters for good and exits; anything that handles
several namespaces uses run_in(), one short-lived thread per namespace.
"""

from __future__ import annotations

import fcntl
import os

from .errors import HostNamespace, NoNamespace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    T = TypeVar("T")

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


def enter(pid: int) -> int:
    """Move the calling thread into the network namespace of `pid`, for good,
    holding that namespace's lock: return the descriptor that holds it (the
    lock ends when it is closed, or with the process).

    Refuses the caller's own namespace (HostNamespace): a container started
    with `--network host` shares it, and changing it would change the host.
    """
    path = f"/proc/{pid}/ns/net"
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NoNamespace(f"process {pid} does not exist (did it exit?)") from None
    except OSError as exc:
        raise NoNamespace(f"cannot open {path}: {exc.strerror}") from None
    try:
        mine, theirs = os.stat("/proc/thread-self/ns/net"), os.fstat(target)
        if (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino):
            raise HostNamespace(f"process {pid} shares the hook's network namespace "
                                "(--network host?): refusing to change the host")
        # One lock per namespace, whoever opened it and through which pid:
        # flock(2) on the namespace's own inode. Containers of a pod share a
        # namespace, and their hooks (and the CLI) run at the same time.
        fcntl.flock(target, fcntl.LOCK_EX)
        try:
            _setns(target)
        except OSError as exc:
            raise NoNamespace(f"cannot enter the network namespace of process {pid}: "
                              f"{exc.strerror}") from None
    except BaseException:
        os.close(target)
        raise
    return target


def shares_user_namespace(pid: int) -> bool:
    """Whether `pid` is in our user namespace (with `--userns`, podman
    configures the network after the hook has run)."""
    try:
        mine, theirs = os.stat("/proc/self/ns/user"), os.stat(f"/proc/{pid}/ns/user")
    except OSError as exc:  # its network namespace is pinned, its process may be gone
        raise NoNamespace(f"cannot read the user namespace of process {pid}: "
                          f"{exc.strerror}") from None
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


def run_in(pid: int, work: Callable[[], T]) -> T:
    """`work()` in the network namespace of `pid`, on a thread of its own that
    ends with it: the caller's thread never changes namespace."""
    import threading

    outcome: list[T] = []
    failure: list[BaseException] = []

    def thread() -> None:
        try:
            lock = enter(pid)
            try:
                outcome.append(work())
            finally:
                os.close(lock)
        except BaseException as exc:  # handed to the caller below
            failure.append(exc)

    worker = threading.Thread(target=thread, name=f"netns-{pid}")
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return outcome[0]
