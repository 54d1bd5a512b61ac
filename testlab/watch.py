"""`oci-multihome-hook watch`, running beside a test, its output read as it comes."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence

from .rootlab import Lab
from .settings import hook_binary


class Watch:
    """`oci-multihome-hook watch`, running, with its output read as it comes.
    `argv` runs it (a command line that ends up in `oci-multihome-hook
    watch`, e.g. through nsenter into the podman 5 lab)."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        # A process group of its own, for stop(): nsenter -p forks the watch
        # and does not pass SIGTERM on to it.
        self.proc = subprocess.Popen(argv, env=env, text=True, start_new_session=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        time.sleep(1)  # `podman events` listens only once started

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, *parts: str, timeout: float = 15) -> str:
        """The next line holding every one of `parts` (earlier ones are kept in `seen`)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"watch printed no line with {parts}: {self.seen}") from None
            self.seen.append(line)
            if all(part in line for part in parts):
                return line

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM to the group; back once every process of it has ended."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"watch (process group {self.proc.pid}) did not stop")
            time.sleep(0.05)


@contextlib.contextmanager
def watching(lab: Lab) -> Iterator[Watch]:
    """The hook under test's `watch`, in the lab."""
    with watch_running(lab.command(str(hook_binary()), "watch"), lab.env) as watch:
        yield watch


@contextlib.contextmanager
def watch_running(argv: Sequence[str], env: dict[str, str] | None = None) -> Iterator[Watch]:
    watch = Watch(argv, env)
    try:
        yield watch
    finally:
        watch.stop()
