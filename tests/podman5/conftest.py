"""The podman 5 lab (testlab/podman5.py): one per session.

Debian 13's podman 5, netavark, crun and runc, in namespaces of their own,
with the project's deb (dist/, `make deb`) installed by apt: the hook runs
from podman's default hook dir on Debian's python3, pyroute2 and pydantic.
`make test-podman5` builds the deb and, the first time, the root.

The losses measured are kept in LOSSES and printed at the end of the run
(and written as JSON to $MULTIHOME_P5_RESULTS when it is set): they are the
README's table.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from testlab import podman5
from testlab.policy import require

# "crun, bridge + macvlan, source-routing" -> {case: loss %}
LOSSES: dict[str, dict[str, float]] = {}
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


@pytest.fixture
def losses() -> dict[str, dict[str, float]]:
    return LOSSES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not LOSSES:
        return
    cases = list(dict.fromkeys(case for row in LOSSES.values() for case in row))
    terminalreporter.section("podman 5 lab: % of pings lost to the far host")
    width = max(len(name) for name in LOSSES)
    terminalreporter.write_line(f"{'':<{width}}  " + "  ".join(f"{c:>15}" for c in cases))
    for name, row in LOSSES.items():
        cells = (f"{row[c]:>14.1f}%" if c in row else f"{'':>15}" for c in cases)
        terminalreporter.write_line(f"{name:<{width}}  " + "  ".join(cells))
    out = os.environ.get("MULTIHOME_P5_RESULTS")
    if out:
        Path(out).write_text(json.dumps(LOSSES, indent=2) + "\n")
        terminalreporter.write_line(f"written to {out}")
