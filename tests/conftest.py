"""Fixtures shared by every test directory.

The podman lab is session-wide: podman config, strict rp_filter on the host,
the far host and the test networks are made once and removed at the end.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from testlab import lab
from testlab.policy import require


@pytest.fixture
def root() -> None:
    require(os.geteuid() == 0, "needs root")
    require(shutil.which("ip") is not None, "needs iproute2")


@pytest.fixture(scope="session")
def podman() -> Iterator[lab.Podman]:
    require(os.geteuid() == 0, "needs root")
    for tool in ("podman", "runc", "nsenter", "ping", "ip"):
        require(shutil.which(tool) is not None, f"needs {tool}")
    require(Path("/bin/busybox").exists(), "needs busybox-static")
    require(lab.hook_binary().exists(), f"needs {lab.hook_binary()} (make venv)")
    with lab.podman_env() as env:
        yield env


@pytest.fixture(scope="session")
def nets(podman: lab.Podman) -> Iterator[list[str]]:
    """Three podman networks (the lab slot's networks 0-2); most tests
    attach to the first two."""
    with lab.networks(podman, [podman.slot.subnet(i) for i in range(3)]) as names:
        yield names


@pytest.fixture(scope="session")
def hooks(podman: lab.Podman) -> Path:
    return podman.hooks_dir()


@pytest.fixture(scope="session")
def dual_nets(podman: lab.Podman) -> Iterator[list[str]]:
    """Two dual-stack networks (the slot's 3 and 4): IPv6 defaults become
    one multipath route."""
    slot = podman.slot
    with lab.networks(podman, [slot.subnet(3), slot.subnet(4)],
                      [slot.subnet6(3), slot.subnet6(4)], prefix="mhdual") as names:
        yield names
