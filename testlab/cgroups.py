"""The cgroup a root lab runs in (testlab/rootlab.py): everything started
in the lab is in it, and killing it ends the lab, containers included."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


class CgroupError(RuntimeError):
    """A lab's cgroup cannot be found or removed; the message says why."""


def cgroup2_mount() -> Path:
    """Where the host mounts cgroup2: /sys/fs/cgroup/unified on a hybrid
    layout (this machine), /sys/fs/cgroup on a unified one."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, _, post = line.partition(" - ")
        if post.split()[:1] == ["cgroup2"]:
            return Path(pre.split()[4])
    raise CgroupError("no cgroup2 mounted on the host: the lab needs one of its own")


def pid_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def kill(cgroup: Path) -> None:
    """SIGKILL every process in a cgroup and below."""
    switch = cgroup / "cgroup.kill"
    if switch.exists():  # Linux >= 5.14
        switch.write_text("1")
        return
    for procs in cgroup.rglob("cgroup.procs"):
        for pid in procs.read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


def remove(cgroup: Path, timeout: float = 30) -> None:
    """Remove a cgroup tree, deepest first, once its processes are gone."""
    deadline = time.monotonic() + timeout
    while cgroup.exists():
        try:
            for dirpath, _, _ in os.walk(cgroup, topdown=False):
                os.rmdir(dirpath)
        except OSError as e:
            if time.monotonic() > deadline:
                raise CgroupError(f"cannot remove the lab's cgroup {cgroup}: {e}") from e
            kill(cgroup)
            time.sleep(0.1)
