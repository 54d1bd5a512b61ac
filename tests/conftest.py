"""Fixtures shared by every test directory.

tests/podman runs inside a root lab (testlab/rootlab.py: `make test-venv`
starts pytest there): its far host and podman networks (testlab/labnet.py)
are the lab's. Every test of the `podman` fixture runs once per OCI
runtime listed in $MULTIHOME_RUNTIMES (comma-separated, "runc" unless set;
`make test-venv` sets "runc,crun"). On podman 5 the CNI backend's tests
are deselected (_no_cni).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from testlab import labnet, rootlab, settings
from testlab.policy import require
from testlab.roots import selected


@pytest.fixture
def root() -> None:
    require(os.geteuid() == 0, "needs root")
    require(shutil.which("ip") is not None, "needs iproute2")


def _no_cni() -> str | None:
    """Why tests/podman/test_cni.py's tests cannot exist here, or None.
    Podman 5 removed the CNI backend (netavark only): their containers
    cannot be made at all, so they are deselected, and the report's header
    says why. Outside a lab they are kept, and fail as every podman test."""
    name = settings.lab_stack()
    major = selected(name)[0].podman if name else 4
    return None if major < 5 else \
        f"podman {major} has no CNI backend: tests/podman/test_cni.py deselected"


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
    try:
        return settings.runtimes()
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None


@pytest.fixture(scope="session")
def podman_lab() -> rootlab.Lab:
    """The lab this pytest runs in, with podman's default hooks dirs."""
    require(os.geteuid() == 0, "needs root")
    require(settings.lab_stack() is not None,
            "needs a lab: python -m testlab.rootlab run -- pytest ... (make test-venv)")
    require(settings.hook_binary().exists(), f"needs {settings.hook_binary()} (make venv)")
    return rootlab.here()


@pytest.fixture(scope="session")
def hooks(podman_lab: rootlab.Lab) -> Path:
    """A hooks dir with the project's JSON, its `path` the hook under test."""
    return podman_lab.hooks_dir()


@pytest.fixture(scope="session", params=runtimes())
def podman(request: pytest.FixtureRequest, podman_lab: rootlab.Lab, hooks: Path) -> rootlab.Lab:
    """The lab's podman with the `hooks` dir and one runtime of
    $MULTIHOME_RUNTIMES (the test id says which)."""
    return podman_lab.using(runtime=request.param, hooks=hooks)


@pytest.fixture(scope="session")
def nets() -> list[str]:
    """Three podman networks; most tests attach to the first two."""
    return [net.name for net in (labnet.BRIDGE_A, labnet.BRIDGE_B, labnet.BRIDGE_C)]


@pytest.fixture(scope="session")
def dual_nets() -> list[str]:
    """Two dual-stack networks: IPv6 defaults become one multipath route."""
    return [labnet.DUAL_A.name, labnet.DUAL_B.name]
