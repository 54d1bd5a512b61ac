"""Every setting of the labs, read from the environment here and nowhere else.

- MULTIHOME_HOOK_BIN: the hook under test (the .venv's console script)
- MULTIHOME_RUNTIMES: tests/podman's OCI runtimes, comma-separated (runc)
- MULTIHOME_STACKS: the stacks of tests/rootlab and `make roots` (all)
- MULTIHOME_ROOTS_CACHE: where the stacks' roots are kept
- MULTIHOME_DEBIAN_MIRROR: where mmdebstrap downloads (apt's own mirror)
- MULTIHOME_LAB_RESULTS, MULTIHOME_OPTIONS_RESULTS: where the measured
  tables are written (not written when unset)
- MHLAB_STACK: set by a lab for what runs in it (rootlab.here()): its stack
- CI: `true` makes a test that cannot run fail instead of skip (policy.py)
"""

from __future__ import annotations

import os
from pathlib import Path

from .commands import REPO

RUNTIMES = ("runc", "crun")
LAB_STACK = "MHLAB_STACK"


def hook_binary() -> Path:
    return Path(os.environ.get("MULTIHOME_HOOK_BIN", REPO / ".venv" / "bin" / "oci-multihome-hook"))


def runtimes() -> list[str]:
    names = [n.strip() for n in os.environ.get("MULTIHOME_RUNTIMES", "runc").split(",")]
    unknown = set(names) - set(RUNTIMES)
    if unknown:
        raise ValueError(f"MULTIHOME_RUNTIMES: {sorted(unknown)} not in {RUNTIMES}")
    return names


def stacks() -> str:
    return os.environ.get("MULTIHOME_STACKS", "")


def roots_cache() -> Path:
    return Path(os.environ.get("MULTIHOME_ROOTS_CACHE", "/var/cache/oci-multihome-hook"))


def debian_mirror() -> str | None:
    return os.environ.get("MULTIHOME_DEBIAN_MIRROR") or None


def results_file(variable: str) -> Path | None:
    value = os.environ.get(variable)
    return Path(value) if value else None


def lab_stack() -> str | None:
    """The name of the stack of the lab this process runs in, or None."""
    return os.environ.get(LAB_STACK) or None


def ci() -> bool:
    return os.environ.get("CI") == "true"
