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


SUBNETS = ("198.18.10.0/24", "198.18.11.0/24", "198.18.12.0/24")


@pytest.fixture(scope="session")
def podman() -> Iterator[lab.Podman]:
    require(os.geteuid() == 0, "needs root")
    for tool in ("podman", "runc", "nsenter", "ping", "ip"):
        require(shutil.which(tool) is not None, f"needs {tool}")
    require(Path("/bin/busybox").exists(), "needs busybox-static")
    require(lab.hook_binary().exists(), f"needs {lab.hook_binary()} (make venv)")
    with lab.podman_env() as env, lab.host_sysctls(lab.STRICT_RP_FILTER), lab.far_host():
        yield env


@pytest.fixture(scope="session")
def nets(podman: lab.Podman) -> Iterator[list[str]]:
    """Three podman networks; most tests attach to the first two."""
    with lab.networks(podman, SUBNETS) as names:
        yield names


@pytest.fixture(scope="session")
def hooks(podman: lab.Podman) -> Path:
    return podman.hooks_dir()


DUAL_STACK = (("198.18.13.0/24", "fd18:13::/64"), ("198.18.14.0/24", "fd18:14::/64"))


@pytest.fixture(scope="session")
def dual_nets(podman: lab.Podman) -> Iterator[list[str]]:
    """Two dual-stack networks: IPv6 defaults become one multipath route."""
    with lab.networks(podman, [v4 for v4, _ in DUAL_STACK], [v6 for _, v6 in DUAL_STACK],
                      prefix="mhdual") as names:
        yield names
