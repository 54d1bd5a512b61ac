"""Fixtures for the namespace tests."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from testlab.fakens import Namespace, build
from testlab.lab import run


@pytest.fixture
def make_ns(root: None) -> Iterator[Callable[..., Namespace]]:
    """Factory: make_ns(count) -> Namespace with a process living in it."""
    names: list[str] = []
    sleepers: list[subprocess.Popen[bytes]] = []

    def factory(count: int = 2) -> Namespace:
        name = f"mhns{os.getpid()}x{len(names)}"
        names.append(name)
        ns = build(name, count)
        sleeper = subprocess.Popen(["ip", "netns", "exec", name, "sleep", "600"])
        sleepers.append(sleeper)
        ns.pid = sleeper.pid
        # `ip netns exec` enters the namespace, then execs: wait for the exec.
        deadline = time.monotonic() + 5
        while run("cat", f"/proc/{ns.pid}/comm").stdout.strip() != "sleep":
            assert time.monotonic() < deadline, "sleeper never started"
            time.sleep(0.01)
        return ns

    yield factory
    for sleeper in sleepers:
        sleeper.kill()
        sleeper.wait()
    for name in names:
        run("ip", "netns", "del", name, check=False)
