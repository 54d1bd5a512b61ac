"""The deb, as an admin installs it: in the podman 4 lab (Debian 12,
`make test-venv`), with apt, which pulls Debian's own python3-pyroute2 and
python3-pydantic from the lab's root; exercised through podman's DEFAULT
hook directories (no --hooks-dir), then purged. The deb is the one `make
deb` built (this checkout is read-only in the lab).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from multihome_hook.errors import INVALID_STATE
from testlab import commands
from testlab.policy import require, required_deb
from testlab.rootlab import Lab

NAME = "oci-multihome-hook"
LAUNCHER = Path("/usr/libexec/oci/hooks.d/oci-multihome-hook")
HOOK_JSON = Path("/usr/share/containers/oci/hooks.d/oci-multihome-hook.json")
UNIT = Path("/usr/lib/systemd/system/oci-multihome-hook-watch.service")
SYSTEM_PACKAGE = Path("/usr/lib/python3/dist-packages/multihome_hook")
# The host-wide default, shipped as documentation: enabled only by copying it.
DROP_IN_EXAMPLE = Path("/usr/share/doc/oci-multihome-hook/examples/50-oci-multihome-hook.conf")
INSTALLED = (LAUNCHER, HOOK_JSON, UNIT, Path("/usr/bin/oci-multihome-hook"),
             SYSTEM_PACKAGE / "hook.py", Path("/usr/share/man/man8/oci-multihome-hook.8.gz"),
             Path("/usr/share/doc/oci-multihome-hook/copyright"), DROP_IN_EXAMPLE)
MODE = "io.multihome.mode"
# What Ubuntu 22.04 ships (python3 as released), which the deb's Depends must accept.
UBUNTU_2204 = {"python3": "3.10.4", "python3-pyroute2": "0.6.4", "python3-pydantic": "1.8.2"}
DPKG_RELATIONS = {">=": "ge", ">>": "gt", "=": "eq", "<=": "le", "<<": "lt"}


def apt(*argv: str) -> None:
    commands.run("apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=600", *argv,
            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), timeout=commands.APT_TIMEOUT)


def purge() -> None:
    if commands.run("dpkg-query", "-W", NAME, check=False).returncode == 0:
        apt("purge", NAME)


@pytest.fixture(scope="module")
def deb() -> Path:
    """dist/'s deb, as new as the sources."""
    require(os.geteuid() == 0, "needs root")
    require(shutil.which("apt-get") is not None, "needs apt-get (Debian)")
    return required_deb()


@pytest.fixture(scope="session")
def podman(podman_lab: Lab) -> Lab:
    """runc only, no --hooks-dir: installing and purging the package once is
    enough, and the hook under every runtime is tests/podman's (and the
    podman 5 lab's)."""
    return podman_lab.using(runtime="runc")


@pytest.fixture(scope="module")
def installed(deb: Path, podman: Lab) -> Iterator[None]:
    purge()  # a run that died earlier may have left it
    try:
        apt("install", str(deb))
        yield
    finally:
        purge()


def test_deb_installs_every_file_and_debian_dependencies(installed: None) -> None:
    for path in INSTALLED:
        assert path.exists(), path
    assert LAUNCHER.read_text().startswith("#!/usr/bin/python3 -IS\n")
    # dh_python3 writes "#! " (a space the kernel skips); isolated all the same.
    shebang = Path("/usr/bin/oci-multihome-hook").read_text().splitlines()[0]
    assert re.fullmatch(r"#! ?/usr/bin/python3 -I", shebang), shebang
    assert os.access(LAUNCHER, os.X_OK)
    versions = commands.run("dpkg-query", "-W", "python3-pyroute2", "python3-pydantic").stdout
    assert "python3-pyroute2\t0.7" in versions and "python3-pydantic\t1.10" in versions
    # The system Python in isolated mode, from /: nothing of the checkout can leak in.
    where = commands.run("env", "-i", "sh", "-c", "cd / && /usr/bin/python3 -I -c "
                    "'import multihome_hook, pyroute2; print(multihome_hook.__file__)'").stdout
    assert where.startswith(str(SYSTEM_PACKAGE)), where
    proc = commands.run("env", "-i", str(LAUNCHER), check=False, stdin="")
    assert proc.returncode == INVALID_STATE and proc.stderr.startswith(
        "oci-multihome-hook: empty OCI state")


def test_installed_hook_fixes_containers_without_hooks_dir(installed: None, podman: Lab,
                                                           nets: list[str]) -> None:
    with podman.container(nets[:2], {MODE: "one-default"}) as c:
        assert len(c.default_routes()) == 1
        assert c.loss() == 0
    with podman.container(nets[:2], {MODE: "loose"}) as c:
        assert c.sysctl("ipv4/conf/all/rp_filter") == 2
    refused = podman.podman(*podman.run_argv(nets[:2], {MODE: "bogus"}, extra=["--rm"]),
                            "true", check=False)
    assert refused.returncode != 0 and "unknown io.multihome.mode 'bogus'" in refused.stderr
    with podman.container(nets[:2]) as c:
        assert len(c.default_routes()) == 2  # not annotated: untouched
        report = commands.run("/usr/bin/oci-multihome-hook", "diagnose", c.name, check=False,
                         env=podman.env)
        assert report.returncode == 1 and "problem (outbound): traffic leaving by" in report.stdout


def test_purge_leaves_nothing_and_containers_still_start(deb: Path, podman: Lab,
                                                         nets: list[str]) -> None:
    apt("install", str(deb))
    purge()
    assert commands.run("dpkg-query", "-W", NAME, check=False).returncode != 0
    for path in (*INSTALLED, SYSTEM_PACKAGE):
        assert not path.exists(), path
    with podman.container(nets[:2], {MODE: "one-default"}) as c:
        assert len(c.default_routes()) == 2  # the hook is gone, the container runs


def test_deb_depends_fit_ubuntu_2204(deb: Path) -> None:
    depends = commands.run("dpkg-deb", "-f", str(deb), "Depends").stdout
    relations: dict[str, set[tuple[str, str]]] = {}
    for m in re.finditer(r"([\w.+:-]+) \((\S+) ([^)]+)\)", depends):
        relations.setdefault(m.group(1).removesuffix(":any"), set()).add((m.group(2), m.group(3)))
    # pyroute2 up to the newest minor tested (setup.cfg says why).
    assert relations["python3-pyroute2"] == {(">=", "0.5.14"), ("<<", "0.10~")}, depends
    assert relations["python3-pydantic"] == {(">=", "1.8.2")}, depends
    for package, version in UBUNTU_2204.items():
        for op, wanted in relations.get(package, ()):
            ok = commands.run("dpkg", "--compare-versions", version, DPKG_RELATIONS[op], wanted,
                         check=False).returncode == 0
            assert ok, f"Ubuntu 22.04's {package} {version} does not satisfy {op} {wanted}"
