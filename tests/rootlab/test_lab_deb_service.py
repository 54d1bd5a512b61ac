"""The deb's watch service under a running systemd, as an admin meets it:
installed disabled and stopped, enabled and started by hand, restarted by an
upgrade, stopped by removal, gone after purge. In a lab of each stack whose
init is the root's systemd (rootlab.running(systemd=True)), with the deb
`make deb` built and a second one of the same sources with revision 2 (the
upgrade). What the maintainer scripts do comes from the build host's
dh_installsystemd (debian/rules).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testlab import cgroups, commands, rootlab
from testlab.policy import require
from testlab.roots import Stack

NAME = "oci-multihome-hook"
UNIT = "oci-multihome-hook-watch.service"
WANTS = f"/etc/systemd/system/multi-user.target.wants/{UNIT}"
# What PID 1 and systemd's boot units would raise or set on the host if the
# lab let them (setup.sh makes /proc/sys read-only there).
HOST_SYSCTLS = ("fs/file-max", "fs/nr_open", "kernel/pid_max", "kernel/sysrq",
                "fs/protected_regular", "fs/protected_fifos", "kernel/core_pattern",
                "kernel/hostname", "net/unix/max_dgram_qlen")


@pytest.fixture(scope="module")
def upgrade_deb(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same sources as `deb`, revision 2: what an upgrade installs."""
    require(shutil.which("dpkg-buildpackage") is not None,
            "needs dpkg-buildpackage (make deb installs it)")
    out = tmp_path_factory.mktemp("deb2")
    env = {**os.environ, "DEB_REVISION": "2", "DIST_DIR": str(out),
           # the unit tests ran when `deb` was built from these sources
           "DEB_BUILD_OPTIONS": "nocheck"}
    commands.run(str(commands.REPO / "packaging" / "build.sh"), "deb", env=env, timeout=600)
    (built,) = out.glob(f"{NAME}_*-2_all.deb")
    return built


@pytest.fixture
def host_before() -> dict[str, str]:
    """The host's settings before the lab boots."""
    return host_sysctls()


@pytest.fixture
def lab(host_before: dict[str, str], stack: Stack, deb: Path,
        upgrade_deb: Path) -> Iterator[rootlab.Lab]:
    """A lab of `stack` booted with systemd, both debs in /var/tmp/mhlab."""
    with rootlab.running(stack, deb, systemd=True) as booted:
        shutil.copy2(upgrade_deb, booted.path(f"/var/tmp/mhlab/{upgrade_deb.name}"))
        yield booted


def host_sysctls() -> dict[str, str]:
    """Those of HOST_SYSCTLS this kernel has."""
    paths = {key: Path("/proc/sys", key) for key in HOST_SYSCTLS}
    return {key: path.read_text() for key, path in paths.items() if path.exists()}


def unit(lab: rootlab.Lab) -> dict[str, str]:
    """The service as systemd sees it."""
    out = lab.run("systemctl", "show", UNIT, "-p", "LoadState,UnitFileState,ActiveState,"
                  "SubState,MainPID,NRestarts,FragmentPath,ControlGroup").stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def apt(lab: rootlab.Lab, *argv: str) -> str:
    proc = lab.sh("cd /var/tmp/mhlab && DEBIAN_FRONTEND=noninteractive "
                  f"apt-get -y -q {' '.join(argv)} 2>&1", check=False)
    assert proc.returncode == 0, proc.stdout
    return proc.stdout


def watching(lab: rootlab.Lab, state: dict[str, str]) -> dict[str, str]:
    """The service's processes (host pid -> command line): `oci-multihome-hook
    watch` and the `podman events` it follows, once both run."""
    deadline = time.monotonic() + 30
    while True:
        # Read from the host: its pids, in the lab's cgroup on the host.
        procs = lab.cgroup / state["ControlGroup"].lstrip("/") / "cgroup.procs"
        found = {}
        for pid in procs.read_text().split():
            with contextlib.suppress(FileNotFoundError):
                found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(
                    b"\0", b" ").decode().strip()
        if any(" events " in cmd for cmd in found.values()):
            return found
        assert time.monotonic() < deadline, (found, journal(lab))
        time.sleep(0.2)


def journal(lab: rootlab.Lab) -> str:
    return lab.run("journalctl", "--no-pager", "-u", UNIT, check=False).stdout


def running_state(lab: rootlab.Lab) -> dict[str, str]:
    """The service's state once it has been up for 3 s with one main pid
    (`watch` failing would show as a restart or a failed unit)."""
    first = unit(lab)
    time.sleep(3)
    state = unit(lab)
    assert state["ActiveState"] == "active" and state["SubState"] == "running", \
        (state, journal(lab))
    assert state["MainPID"] == first["MainPID"] != "0" and state["NRestarts"] == "0", \
        (first, state, journal(lab))
    watch = watching(lab, state)
    assert any(f"/usr/bin/{NAME} watch" in cmd for cmd in watch.values()), watch
    return state


def test_watch_service_through_install_enable_upgrade_remove_purge(
        lab: rootlab.Lab, deb: Path, upgrade_deb: Path, host_before: dict[str, str]) -> None:
    booted = lab.run("systemctl", "is-system-running", check=False).stdout.strip()
    assert booted in ("running", "degraded"), booted
    assert unit(lab)["LoadState"] == "not-found"

    # Installed: known to systemd (the postinst reloaded it), disabled, stopped.
    apt(lab, "install", f"./{deb.name}")
    state = unit(lab)
    assert state["LoadState"] == "loaded", state
    assert state["FragmentPath"].endswith(f"/systemd/system/{UNIT}"), state
    assert state["UnitFileState"] == "disabled" and state["ActiveState"] == "inactive", state
    assert lab.run("systemctl", "is-enabled", UNIT, check=False).stdout.strip() == "disabled"

    # The admin's step (README): enable --now. `watch` follows podman's events.
    lab.run("systemctl", "enable", "--now", UNIT)
    before = running_state(lab)
    assert before["UnitFileState"] == "enabled", before

    # Upgrade to revision 2: restarted (a new main pid), still enabled.
    out = apt(lab, "install", f"./{upgrade_deb.name}")
    assert re.search(r"Unpacking oci-multihome-hook \(\S+-2\) over \(\S+-1\)", out), out
    after = running_state(lab)
    assert after["UnitFileState"] == "enabled", after
    assert after["MainPID"] != before["MainPID"], (before, after)
    version = lab.run("dpkg-query", "-W", "-f", "${Version}", NAME).stdout
    assert version.endswith("-2"), version

    # Removed: stopped, its unit gone; the admin's enablement is kept until purge.
    apt(lab, "remove", NAME)
    state = unit(lab)
    assert state["LoadState"] == "not-found" and state["ActiveState"] == "inactive", state
    assert not os.path.lexists(lab.path(f"/usr/lib/systemd/system/{UNIT}"))
    assert not os.path.lexists(lab.path(f"/lib/systemd/system/{UNIT}"))
    assert os.path.lexists(lab.path(WANTS))

    # Purged: nothing of it left, not even the enablement.
    apt(lab, "purge", NAME)
    assert not os.path.lexists(lab.path(WANTS))
    assert lab.run("dpkg-query", "-W", NAME, check=False).returncode != 0
    left = lab.run("find", "/etc/systemd", "/var/lib/systemd", "-name", f"*{NAME}*").stdout
    assert left == "", left
    assert unit(lab)["LoadState"] == "not-found"

    # systemd in the lab changed nothing of the host's kernel settings.
    assert host_sysctls() == host_before


def test_systemd_lab_leaves_nothing(stack: Stack, deb: Path,
                                    host_before: dict[str, str]) -> None:
    """The lab's cgroup (systemd's whole tree) goes with the lab, and the
    host's kernel settings stay as they were."""
    cgroup2 = cgroups.cgroup2_mount()

    def ours() -> set[str]:
        """This process's labs' cgroups (its other labs live on, conftest.Labs)."""
        return {p.name for p in cgroup2.iterdir() if p.name.startswith("oci-multihome-lab.")
                and p.name.split(".")[1] == str(os.getpid())}

    before = ours()
    with rootlab.running(stack, deb, systemd=True) as lab:
        assert lab.run("systemctl", "show", "-p", "ControlGroup", "init.scope").stdout \
            == "ControlGroup=/init.scope\n"
        assert (lab.cgroup / "init.scope").is_dir()
        cgroup = lab.cgroup
    assert not cgroup.exists()
    assert ours() == before
    assert host_sysctls() == host_before
