"""The RPMs (for the system Python, and for RHEL 9's Python 3.9), built
from this tree and inspected, on the host: nothing is installed.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from testlab import commands, pythons
from testlab.policy import require

NAME = "oci-multihome-hook"
LAUNCHER = Path("/usr/libexec/oci/hooks.d/oci-multihome-hook")
HOOK_JSON = Path("/usr/share/containers/oci/hooks.d/oci-multihome-hook.json")
UNIT = Path("/usr/lib/systemd/system/oci-multihome-hook-watch.service")
SPEC = commands.REPO / "packaging" / "rpm" / f"{NAME}.spec"
BIN = Path("/usr/bin/oci-multihome-hook")
# The lowest versions the package accepts, which RHEL 9 (EPEL) and Ubuntu
# 22.04 must satisfy.
RPM_REQUIRES = ("python3-pyroute2 >= 0.5.14", "python3-pydantic >= 1.8.2",
                "(podman or containers-common)")


@pytest.fixture(scope="module")
def built() -> Path:
    require(shutil.which("apt-get") is not None, "needs apt-get (Debian)")
    commands.run("make", "-C", str(commands.REPO), "rpm", timeout=commands.APT_TIMEOUT)
    return commands.REPO / "dist"


@pytest.fixture(scope="module")
def rpm39(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The RPM for RHEL 9: built on Debian, for a Python 3.9 interpreter."""
    python = pythons.find("3.9")  # RHEL 9's
    require(python is not None, "needs Python 3.9 (pyenv's, or python3.9 on PATH)")
    assert python is not None
    out = tmp_path_factory.mktemp("rpm39")
    commands.run("make", "-C", str(commands.REPO), "rpm", f"RPM_PYTHON={python}", f"DIST_DIR={out}",
            timeout=commands.APT_TIMEOUT)
    (rpm,) = out.glob(f"{NAME}-*.noarch.rpm")
    return rpm


def check_rpm(rpm: Path, python: str, tmp: Path) -> None:
    """The RPM's files and dependencies, for Python `python` (X.Y)."""
    site = f"/usr/lib/python{python}/site-packages"
    files = set(commands.run("rpm", "-qlp", str(rpm)).stdout.split())
    for path in (LAUNCHER, HOOK_JSON, UNIT, BIN,
                 Path("/usr/share/man/man8/oci-multihome-hook.8.gz")):
        assert str(path) in files, path
    assert any(f.endswith("/examples/50-oci-multihome-hook.conf") for f in files), sorted(files)
    tag = "cpython-" + python.replace(".", "")
    for module in (f"{site}/multihome_hook/hook.py",
                   f"{site}/multihome_hook/__pycache__/hook.{tag}.pyc"):
        assert module in files, module
    assert all(f.startswith(site) for f in files if "-packages/" in f), sorted(files)
    assert any(f.endswith("/LICENSE") for f in commands.run("rpm", "-qpL", str(rpm)).stdout.split())
    requires = commands.run("rpm", "-qp", "--requires", str(rpm)).stdout.splitlines()
    for dependency in (f"python(abi) = {python}", *RPM_REQUIRES):
        assert dependency in requires, requires
    assert not any("pip" in r.lower() for r in requires)
    # The entry point on PATH: the system Python, isolated (no user site).
    commands.run("sh", "-c", f"cd {shlex.quote(str(tmp))} && rpm2cpio {shlex.quote(str(rpm))} "
            "| cpio -idm --quiet")
    shebang = (tmp / BIN.relative_to("/")).read_text().splitlines()[0]
    assert shebang == "#!/usr/bin/python3 -I", shebang
    assert (tmp / LAUNCHER.relative_to("/")).read_text().startswith("#!/usr/bin/python3 -I\n")


def test_rpm_files_and_dependencies(built: Path, tmp_path: Path) -> None:
    require(shutil.which("rpm") is not None, "needs rpm (make rpm installs it)")
    (rpm,) = built.glob(f"{NAME}-*.noarch.rpm")
    system = commands.run("/usr/bin/python3", "-c",
                     "import sys; print('{0}.{1}'.format(*sys.version_info))").stdout.strip()
    check_rpm(rpm, system, tmp_path)


def test_rpm_for_rhel9_python39(rpm39: Path, tmp_path: Path) -> None:
    check_rpm(rpm39, "3.9", tmp_path)


def test_spec_builds_as_it_is_with_the_pyproject_version() -> None:
    spec = SPEC.read_text()
    assert not re.findall(r"@[A-Z_]+@", spec), "placeholders: the spec must build as it is"
    (version,) = re.findall(r"^Version:\s*(\S+)$", spec, re.MULTILINE)
    build = commands.REPO / "packaging" / "build.sh"
    assert version == commands.run(str(build), "version").stdout.strip()
    newest = re.search(r"^%changelog\n\*.* - (\S+)$", spec, re.MULTILINE)
    assert newest is not None and newest.group(1).startswith(f"{version}-"), newest
