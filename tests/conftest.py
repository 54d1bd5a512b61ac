"""Fixtures shared by every test directory.

The podman lab is session-wide: podman config, strict rp_filter on the host,
the far host and the test networks are made once and removed at the end.
Every test of the `podman` fixture runs once per OCI runtime listed in
$MULTIHOME_RUNTIMES (comma-separated, "runc" unless set; `make test-venv`
sets "runc,crun"). On podman 5 the CNI backend's tests are deselected
(_no_cni).
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


def _no_cni() -> str | None:
    """Why tests/podman/test_cni.py's tests cannot exist here, or None.
    Podman 5 removed the CNI backend (netavark only): their containers
    cannot be made at all, so they are deselected, and the report's header
    says why. Without podman they are kept, and fail as every podman test."""
    if shutil.which("podman") is None or lab.podman_major() < 5:
        return None
    return f"podman {lab.podman_major()} has no CNI backend: tests/podman/test_cni.py deselected"


def pytest_report_header() -> str | None:
    return _no_cni()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # By node id, not item.path: pytest 6.2 (EL9's, which runs tests/unit
    # in the RPM's %check) has no Item.path.
    cni = [item for item in items if item.nodeid.startswith("tests/podman/test_cni.py::")]
    if cni and _no_cni() is not None:
        config.hook.pytest_deselected(items=cni)
        items[:] = [item for item in items if item not in cni]


def runtimes() -> list[str]:
    names = [n.strip() for n in os.environ.get("MULTIHOME_RUNTIMES", "runc").split(",")]
    unknown = set(names) - set(lab.RUNTIMES)
    if unknown:
        raise pytest.UsageError(f"MULTIHOME_RUNTIMES: {sorted(unknown)} not in {lab.RUNTIMES}")
    return names


@pytest.fixture(scope="session")
def podman_lab() -> Iterator[lab.Podman]:
    """The lab, with its default runtime (runc)."""
    require(os.geteuid() == 0, "needs root")
    for tool in ("podman", "nsenter", "ping", "ip", *runtimes()):
        require(shutil.which(tool) is not None, f"needs {tool}")
    require(Path("/bin/busybox").exists(), "needs busybox-static")
    require(lab.hook_binary().exists(), f"needs {lab.hook_binary()} (make venv)")
    with lab.podman_env() as env:
        yield env


@pytest.fixture(scope="session", params=runtimes())
def podman(request: pytest.FixtureRequest, podman_lab: lab.Podman) -> lab.Podman:
    """The lab's podman with one runtime of $MULTIHOME_RUNTIMES (the test id says which)."""
    return podman_lab.variant(runtime=request.param)


@pytest.fixture(scope="session")
def nets(podman_lab: lab.Podman) -> Iterator[list[str]]:
    """Three podman networks (the lab slot's networks 0-2); most tests
    attach to the first two."""
    with lab.networks(podman_lab, [podman_lab.slot.subnet(i) for i in range(3)]) as names:
        yield names


@pytest.fixture(scope="session")
def hooks(podman_lab: lab.Podman) -> Path:
    return podman_lab.hooks_dir()


@pytest.fixture(scope="session")
def dual_nets(podman_lab: lab.Podman) -> Iterator[list[str]]:
    """Two dual-stack networks (the slot's 3 and 4): IPv6 defaults become
    one multipath route."""
    slot = podman_lab.slot
    with lab.networks(podman_lab, [slot.subnet(3), slot.subnet(4)],
                      [slot.subnet6(3), slot.subnet6(4)], prefix="mhdual") as names:
        yield names
