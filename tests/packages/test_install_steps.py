"""No hidden install step: every program the suite or a Makefile target runs
on the host comes from a package the Makefile installs (`make all-deps`;
inside the labs, their roots' packages: testlab/roots.py),
or from the packages every Debian system has (essential, or priority
required).

A program installed by hand would make the suite pass here and fail on a
fresh machine (cpio was one). The list below is kept by hand: add a program
when a test or a target starts calling it. Interpreters are not in it: the
library sets' Pythons come from pyenv, which the Makefile looks for.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from testlab import commands
from testlab.policy import require

# program -> who runs it (documentation only).
COMMANDS = {
    "apt-get": "the package tests, the Makefile", "dpkg": "the package tests",
    "dpkg-query": "the Makefile", "dpkg-deb": "the package tests",
    "dpkg-buildpackage": "make deb", "rpm": "the package tests", "rpmbuild": "make rpm",
    "rpm2cpio": "the package tests", "cpio": "the package tests",
    "lintian": "make lint-packages", "rpmlint": "make lint-packages",
    "mmdebstrap": "the root labs", "ip": "the labs", "nsenter": "the labs",
    "unshare": "the labs", "mount": "the labs", "umount": "the labs", "tar": "the root labs",
    "make": "the package tests", "timeout": "the labs", "mknod": "the root labs",
    "git": "make dist, packaging/build.sh", "iptables-save": "make test (testlab.hoststate)",
    "ip6tables-save": "make test (testlab.hoststate)",
    "rsync": "make tmt-local (tmt's local provisioning)",
}
# podman, its runtimes and helpers, busybox, ping and the rootless tools run
# in the labs only (make test, make demo, make bench): their roots hold them.
def _package_of(path: str) -> str | None:
    """The package that ships `path` (dpkg -S), trying the /usr-merged twin."""
    real = os.path.realpath(path)
    candidates = {path, real}
    for p in list(candidates):
        if p.startswith("/usr/"):
            candidates.add(p[len("/usr"):])
        elif p.startswith(("/bin/", "/sbin/", "/lib/")):
            candidates.add("/usr" + p)
    for candidate in sorted(candidates):
        proc = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if proc.returncode == 0:
            # "package[:arch][, other]: path"; diversions are listed as such
            first = proc.stdout.splitlines()[0]
            if not first.startswith("diversion "):
                return first.split(":", 1)[0].split(",")[0].strip()
    return None


def _in_every_debian(package: str) -> bool:
    """Essential, or of priority required: in every Debian system, even one
    made with debootstrap's minbase."""
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${Essential} ${Priority}", package],
                          capture_output=True, text=True)
    return proc.stdout.split()[:1] == ["yes"] or proc.stdout.endswith(" required")


@pytest.fixture(scope="module")
def makefile_packages() -> set[str]:
    require(os.geteuid() == 0, "needs root (make all-deps installs packages)")
    require(shutil.which("dpkg") is not None, "needs dpkg (Debian)")
    # On a fresh machine: dozens of packages, perhaps after another apt's
    # dpkg lock (make deb rpm, on another worker).
    commands.run("make", "-s", "-C", str(commands.REPO), "all-deps", timeout=commands.APT_TIMEOUT)
    listed = commands.run("make", "-s", "-C", str(commands.REPO), "print-packages").stdout.split()
    return set(listed)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_comes_from_a_package_the_makefile_installs(
        makefile_packages: set[str], command: str) -> None:
    path = shutil.which(command)
    assert path is not None, f"{command} ({COMMANDS[command]}) is not installed " \
                             "after make all-deps"
    package = _package_of(path)
    assert package is not None, f"{command}: {path} belongs to no Debian package"
    assert package in makefile_packages or _in_every_debian(package), (
        f"{command} ({COMMANDS[command]}) comes from {package}, which no Makefile "
        "package list names: add it to one")

