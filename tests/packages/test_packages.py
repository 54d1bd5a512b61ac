"""The packages, built from this tree and installed like an admin would.

The deb is installed with apt (pulling Debian's own python3-pyroute2 and
python3-pydantic), exercised through podman's DEFAULT hook directories (no
--hooks-dir), then purged. The RPMs (for the system Python, and for RHEL 9's
Python 3.9) are built and inspected.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from multihome_hook.errors import INVALID_STATE
from testlab import lab
from testlab.policy import require

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
SPEC = lab.REPO / "packaging" / "rpm" / f"{NAME}.spec"
BIN = Path("/usr/bin/oci-multihome-hook")
# The lowest versions the package accepts, which RHEL 9 (EPEL) and Ubuntu
# 22.04 must satisfy.
RPM_REQUIRES = ("python3-pyroute2 >= 0.5.14", "python3-pydantic >= 1.8.2",
                "(podman or containers-common)")
# What Ubuntu 22.04 ships (python3 as released), which the deb's Depends must accept.
UBUNTU_2204 = {"python3": "3.10.4", "python3-pyroute2": "0.6.4", "python3-pydantic": "1.8.2"}
DPKG_RELATIONS = {">=": "ge", ">>": "gt", "=": "eq", "<=": "le", "<<": "lt"}


def apt(*argv: str) -> None:
    # Waits for a dpkg lock another apt (make all-deps, make deb) holds.
    lab.run("apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=600", *argv,
            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), timeout=lab.APT_TIMEOUT)


def purge() -> None:
    if lab.run("dpkg-query", "-W", NAME, check=False).returncode == 0:
        apt("purge", "--autoremove", NAME)


@pytest.fixture(scope="module")
def built() -> Path:
    require(os.geteuid() == 0, "needs root")
    require(shutil.which("apt-get") is not None, "needs apt-get (Debian)")
    lab.run("make", "-C", str(lab.REPO), "deb", "rpm", timeout=lab.APT_TIMEOUT)
    return lab.REPO / "dist"


@pytest.fixture(scope="session")
def podman(podman_lab: lab.Podman) -> lab.Podman:
    """runc only: installing and purging the package once is enough, and the
    hook under every runtime is tests/podman's (and the podman 5 lab's)."""
    return podman_lab


@pytest.fixture(scope="module")
def installed(built: Path, podman: lab.Podman) -> Iterator[None]:
    (deb,) = built.glob(f"{NAME}_*_all.deb")
    purge()  # a run that died earlier may have left it
    try:
        apt("install", str(deb))
        yield
    finally:
        purge()


def test_deb_installs_every_file_and_debian_dependencies(installed: None) -> None:
    for path in INSTALLED:
        assert path.exists(), path
    assert LAUNCHER.read_text().startswith("#!/usr/bin/python3 -I\n")
    assert os.access(LAUNCHER, os.X_OK)
    versions = lab.run("dpkg-query", "-W", "python3-pyroute2", "python3-pydantic").stdout
    assert "python3-pyroute2\t0.7" in versions and "python3-pydantic\t1.10" in versions
    # The system Python in isolated mode, from /: nothing of the checkout can leak in.
    where = lab.run("env", "-i", "sh", "-c", "cd / && /usr/bin/python3 -I -c "
                    "'import multihome_hook, pyroute2; print(multihome_hook.__file__)'").stdout
    assert where.startswith(str(SYSTEM_PACKAGE)), where
    proc = lab.run("env", "-i", str(LAUNCHER), check=False, stdin="")
    assert proc.returncode == INVALID_STATE and proc.stderr.startswith(
        "oci-multihome-hook: empty OCI state")


def test_installed_hook_fixes_containers_without_hooks_dir(installed: None, podman: lab.Podman,
                                                           nets: list[str]) -> None:
    with podman.container(nets[:2], {MODE: "one-default"}) as c:
        assert len(c.default_routes()) == 1
        assert c.loss() == 0
    with podman.container(nets[:2], {MODE: "loose"}) as c:
        assert c.sysctl("ipv4/conf/all/rp_filter") == 2
    refused = podman(*podman.run_argv(nets[:2], {MODE: "bogus"}, None, ["--rm"]), "true",
                     check=False)
    assert refused.returncode != 0 and "unknown io.multihome.mode 'bogus'" in refused.stderr
    with podman.container(nets[:2]) as c:
        assert len(c.default_routes()) == 2  # not annotated: untouched
        report = lab.run("/usr/bin/oci-multihome-hook", "diagnose", c.name, check=False,
                         env=podman.env)
        assert report.returncode == 1 and "problem: 2 IPv4 default routes" in report.stdout


def test_purge_leaves_nothing_and_containers_still_start(built: Path, podman: lab.Podman,
                                                         nets: list[str]) -> None:
    (deb,) = built.glob(f"{NAME}_*_all.deb")
    apt("install", str(deb))
    purge()
    assert lab.run("dpkg-query", "-W", NAME, check=False).returncode != 0
    for path in (*INSTALLED, SYSTEM_PACKAGE):
        assert not path.exists(), path
    with podman.container(nets[:2], {MODE: "one-default"}) as c:
        assert len(c.default_routes()) == 2  # the hook is gone, the container runs


def python39() -> str | None:
    """RHEL 9's Python, found as the Makefile finds it: pyenv's, else python3.9 on PATH."""
    pyenv = shutil.which("pyenv")
    roots = [lab.run(pyenv, "root").stdout.strip()] if pyenv else []
    found = sorted(str(p) for root in (*roots, "/root/.pyenv")
                   for p in Path(root).glob("versions/3.9*/bin/python3.9"))
    return found[-1] if found else shutil.which("python3.9")


@pytest.fixture(scope="module")
def rpm39(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The RPM for RHEL 9: built on Debian, for a Python 3.9 interpreter."""
    python = python39()
    require(python is not None, "needs Python 3.9 (pyenv's, or python3.9 on PATH)")
    assert python is not None
    out = tmp_path_factory.mktemp("rpm39")
    lab.run("make", "-C", str(lab.REPO), "rpm", f"RPM_PYTHON={python}", f"DIST_DIR={out}",
            timeout=lab.APT_TIMEOUT)
    (rpm,) = out.glob(f"{NAME}-*.noarch.rpm")
    return rpm


def check_rpm(rpm: Path, python: str, tmp: Path) -> None:
    """The RPM's files and dependencies, for Python `python` (X.Y)."""
    site = f"/usr/lib/python{python}/site-packages"
    files = set(lab.run("rpm", "-qlp", str(rpm)).stdout.split())
    for path in (LAUNCHER, HOOK_JSON, UNIT, BIN,
                 Path("/usr/share/man/man8/oci-multihome-hook.8.gz")):
        assert str(path) in files, path
    assert any(f.endswith("/examples/50-oci-multihome-hook.conf") for f in files), sorted(files)
    tag = "cpython-" + python.replace(".", "")
    for module in (f"{site}/multihome_hook/hook.py",
                   f"{site}/multihome_hook/__pycache__/hook.{tag}.pyc"):
        assert module in files, module
    assert all(f.startswith(site) for f in files if "-packages/" in f), sorted(files)
    assert any(f.endswith("/LICENSE") for f in lab.run("rpm", "-qpL", str(rpm)).stdout.split())
    requires = lab.run("rpm", "-qp", "--requires", str(rpm)).stdout.splitlines()
    for dependency in (f"python(abi) = {python}", *RPM_REQUIRES):
        assert dependency in requires, requires
    assert not any("pip" in r.lower() for r in requires)
    # The entry point on PATH: the system Python, isolated (no user site).
    lab.run("sh", "-c", f"cd {shlex.quote(str(tmp))} && rpm2cpio {shlex.quote(str(rpm))} "
            "| cpio -idm --quiet")
    shebang = (tmp / BIN.relative_to("/")).read_text().splitlines()[0]
    assert shebang == "#!/usr/bin/python3 -I", shebang
    assert (tmp / LAUNCHER.relative_to("/")).read_text().startswith("#!/usr/bin/python3 -I\n")


def test_rpm_files_and_dependencies(built: Path, tmp_path: Path) -> None:
    require(shutil.which("rpm") is not None, "needs rpm (make rpm installs it)")
    (rpm,) = built.glob(f"{NAME}-*.noarch.rpm")
    system = lab.run("/usr/bin/python3", "-c",
                     "import sys; print('{0}.{1}'.format(*sys.version_info))").stdout.strip()
    check_rpm(rpm, system, tmp_path)


def test_rpm_for_rhel9_python39(rpm39: Path, tmp_path: Path) -> None:
    check_rpm(rpm39, "3.9", tmp_path)


def test_spec_builds_as_it_is_with_the_pyproject_version() -> None:
    spec = SPEC.read_text()
    assert not re.findall(r"@[A-Z_]+@", spec), "placeholders: the spec must build as it is"
    (version,) = re.findall(r"^Version:\s*(\S+)$", spec, re.MULTILINE)
    assert version == lab.run(str(lab.REPO / "packaging" / "build.sh"), "version").stdout.strip()
    newest = re.search(r"^%changelog\n\*.* - (\S+)$", spec, re.MULTILINE)
    assert newest is not None and newest.group(1).startswith(f"{version}-"), newest


def test_deb_depends_fit_ubuntu_2204(built: Path) -> None:
    (deb,) = built.glob(f"{NAME}_*_all.deb")
    depends = lab.run("dpkg-deb", "-f", str(deb), "Depends").stdout
    relations = {m.group(1).removesuffix(":any"): (m.group(2), m.group(3))
                 for m in re.finditer(r"([\w.+:-]+) \((\S+) ([^)]+)\)", depends)}
    assert relations["python3-pyroute2"] == (">=", "0.5.14"), depends
    assert relations["python3-pydantic"] == (">=", "1.8.2"), depends
    for package, version in UBUNTU_2204.items():
        if package in relations:
            op, wanted = relations[package]
            ok = lab.run("dpkg", "--compare-versions", version, DPKG_RELATIONS[op], wanted,
                         check=False).returncode == 0
            assert ok, f"Ubuntu 22.04's {package} {version} does not satisfy {op} {wanted}"
