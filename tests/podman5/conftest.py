"""The podman 5 lab (testlab/podman5.py): one per session.

Debian 13's podman 5, netavark, crun and runc, in namespaces of their own,
with the project's deb (dist/, `make deb`) installed by apt: the hook runs
from podman's default hook dir on Debian's python3, pyroute2 and pydantic.
`make test-podman5` builds the deb and, the first time, the root.

The network shapes' measured rows (test_shapes.py) are printed at the end
of the run and written as JSON to $MULTIHOME_P5_RESULTS when it is set: the
README's tables for podman 5.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from testlab import podman5
from testlab.policy import require
from testlab.shapes import Results

RESULTS = Results("podman 5 lab", "MULTIHOME_P5_RESULTS")
# What went into the deb: a deb older than any of these tests old code.
SOURCES = ("src", "hook", "oci-hooks.d", "packaging", "pyproject.toml")


def _newest_source() -> tuple[float, Path]:
    newest = (0.0, podman5.REPO)
    for name in SOURCES:
        top = podman5.REPO / name
        for path in [top, *top.rglob("*")] if top.is_dir() else [top]:
            # Not pip's egg-info, which every editable install rewrites.
            if path.is_file() and "__pycache__" not in path.parts and not any(
                    part.endswith(".egg-info") for part in path.parts):
                newest = max(newest, (path.stat().st_mtime, path))
    return newest


@pytest.fixture(scope="session")
def deb5() -> Path:
    """The deb a lab installs (as new as the sources), with the root built."""
    require(os.geteuid() == 0, "needs root")
    require(podman5.root_ready() or shutil.which("mmdebstrap") is not None,
            f"needs mmdebstrap (apt-get install mmdebstrap) to build {podman5.ROOT}")
    deb = podman5.find_deb()
    require(deb is not None, f"needs dist/{podman5.DEB_GLOB} (make deb)")
    assert deb is not None
    mtime, source = _newest_source()
    require(deb.stat().st_mtime >= mtime,
            f"{deb.name} is older than {source.relative_to(podman5.REPO)}: make deb")
    podman5.ensure_root()
    return deb


@pytest.fixture(scope="session")
def lab5(deb5: Path) -> Iterator[podman5.Lab]:
    with podman5.running(deb5) as lab:
        yield lab


@pytest.fixture(scope="session")
def results() -> Results:
    return RESULTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    RESULTS.summary(terminalreporter)
