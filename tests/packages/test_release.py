"""The release (`make dist`): every artifact and its checksum; the RPMs
for RHEL 9's Python 3.9 and for the Fedora of the newest Python here,
built on this Debian host from the sdist (their %check ran tests/unit) and
inspected: nothing is installed. The deb is installed in a lab:
tests/packages/test_deb.py.
"""

from __future__ import annotations

import re
import shlex
import shutil
import tarfile
import zipfile
from pathlib import Path
from typing import NamedTuple

import pytest

from multihome_hook import hookfiles
from testlab import commands, docpointers
from testlab.policy import require

NAME = "oci-multihome-hook"
LAUNCHER = Path("/usr/libexec/oci/hooks.d/oci-multihome-hook")
HOOK_JSON = Path("/usr/share/containers/oci/hooks.d/oci-multihome-hook.json")
UNIT = Path("/usr/lib/systemd/system/oci-multihome-hook-watch.service")
SPEC = commands.REPO / "packaging" / "rpm" / f"{NAME}.spec"
BIN = Path("/usr/bin/oci-multihome-hook")
BUILD = commands.REPO / "packaging" / "build.sh"


def version() -> str:
    return commands.run(str(BUILD), "version").stdout.strip()


def rpm_requires(python: str) -> tuple[str, ...]:
    """The lowest versions the package accepts, which RHEL 9 (EPEL) and
    Ubuntu 22.04 must satisfy, and pyroute2's bound (setup.cfg), as rpm's
    generator writes them for X.Y (Debian's: Fedora's writes `< 0.10~~`)."""
    pyroute2 = f"python{python}dist(pyroute2)"
    return (f"({pyroute2} < 0.10 with {pyroute2} >= 0.5.14)",
            f"python{python}dist(pydantic) >= 1.8.2", "(podman or containers-common)")


class Release(NamedTuple):
    dir: Path
    log: str  # make's output


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Release:
    """`make dist` into a directory of its own (dist/ is the labs')."""
    require(shutil.which("apt-get") is not None, "needs apt-get (Debian)")
    out = tmp_path_factory.mktemp("dist")
    argv = ["make", "-C", str(commands.REPO), "dist", f"DIST_DIR={out}"]
    # A release is made from a commit; a checkout being worked on is tested
    # as it is.
    if commands.run("git", "-C", str(commands.REPO), "status", "--porcelain").stdout:
        argv.append("DIST_ALLOW_DIRTY=1")
    proc = commands.run(*argv, timeout=commands.APT_TIMEOUT)
    return Release(out, proc.stdout + proc.stderr)


@pytest.fixture(scope="module")
def release(made: Release) -> Path:
    return made.dir


def fedora_python() -> str:
    """X.Y of the newest Python here: the venv's, which `make dist` builds
    the Fedora RPM for."""
    venv = commands.REPO / ".venv" / "bin" / "python"
    return commands.run(str(venv), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"
                        ).stdout.strip()


def test_dist_holds_every_artifact_and_its_checksum(release: Path) -> None:
    v = version()
    expected = {f"oci_multihome_hook-{v}.tar.gz", f"oci_multihome_hook-{v}-py3-none-any.whl",
                f"{NAME}_{v}-1_all.deb", f"{NAME}_{v}-1.dsc", f"{NAME}_{v}.orig.tar.gz",
                f"{NAME}_{v}-1.debian.tar.xz",
                f"{NAME}-{v}-1.el9.noarch.rpm", f"{NAME}-{v}-1.el9.src.rpm", "SHA256SUMS"}
    names = {p.name for p in release.iterdir()}
    assert expected <= names, sorted(expected - names)
    assert len([n for n in names if re.fullmatch(rf"{NAME}-{v}-1\.fc\d+\.noarch\.rpm", n)]) == 1
    assert len([n for n in names if re.fullmatch(rf"{NAME}-{v}-1\.fc\d+\.src\.rpm", n)]) == 1
    summed = {line.split()[1] for line in (release / "SHA256SUMS").read_text().splitlines()}
    assert summed == names - {"SHA256SUMS"}
    commands.run("sh", "-c", f"cd {shlex.quote(str(release))} && sha256sum --quiet -c SHA256SUMS")


def test_sdist_is_the_source_of_the_packages(release: Path) -> None:
    """What the spec, debian/rules and the build-time tests use is in it."""
    v = version()
    with tarfile.open(release / f"oci_multihome_hook-{v}.tar.gz") as sdist:
        names = set(sdist.getnames())
    top = f"oci_multihome_hook-{v}"
    for path in ("PKG-INFO", "setup.cfg", "pyproject.toml", "LICENSE", "README.md",
                 "CHANGELOG.md", "hook/oci-multihome-hook", "oci-hooks.d/oci-multihome-hook.json",
                 "packaging/oci-multihome-hook-watch.service", "packaging/debian/rules",
                 "src/multihome_hook/hook.py", "tests/unit/test_plan.py", "testlab/rootlab.py"):
        assert f"{top}/{path}" in names, path
    assert not [n for n in names if "__pycache__" in n or n.startswith(f"{top}/.")]
    wheel = zipfile.ZipFile(release / f"oci_multihome_hook-{v}-py3-none-any.whl")
    assert "multihome_hook/hook.py" in wheel.namelist()


def every_help() -> str:
    """The --help of the program and of each command, as the packages ship it."""
    venv = commands.REPO / ".venv" / "bin" / "oci-multihome-hook"
    return "".join(commands.run(str(venv), *command, "--help").stdout
                   for command in ([], ["diagnose"], ["apply"], ["doctor"], ["watch"]))


def check_docs_and_hook(root: Path) -> None:
    """Every page the installed README, man page and --help point to is
    installed, and podman accepts the installed hook JSON (`root`: a
    package unpacked)."""
    assert docpointers.dead_pointers(root, every_help()) == []
    assert hookfiles.problems((root / HOOK_JSON.relative_to("/")).read_text(), root) == []


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
    for dependency in (f"python(abi) = {python}", *rpm_requires(python)):
        assert dependency in requires, requires
    assert not any("pip" in r.lower() for r in requires)
    # The entry point on PATH: the system Python, isolated (no user site).
    commands.run("sh", "-c", f"cd {shlex.quote(str(tmp))} && rpm2cpio {shlex.quote(str(rpm))} "
            "| cpio -idm --quiet")
    shebang = (tmp / BIN.relative_to("/")).read_text().splitlines()[0]
    assert shebang == "#!/usr/bin/python3 -I", shebang
    assert (tmp / LAUNCHER.relative_to("/")).read_text().startswith("#!/usr/bin/python3 -IS\n")
    check_docs_and_hook(tmp)


def test_the_packages_ran_the_unit_tests_while_building(made: Release) -> None:
    """Both RPMs' %check (and the deb's dh_auto_test) ran tests/unit."""
    runs = re.findall(r"^(\d+) passed", made.log, re.MULTILINE)
    assert len(runs) >= 2 and all(int(n) > 200 for n in runs), runs


def test_deb_installs_every_page_it_points_to(release: Path, tmp_path: Path) -> None:
    (deb,) = release.glob(f"{NAME}_*_all.deb")
    commands.run("dpkg-deb", "-x", str(deb), str(tmp_path))
    check_docs_and_hook(tmp_path)


def test_fedora_rpm_files_and_dependencies(release: Path, tmp_path: Path) -> None:
    (rpm,) = release.glob(f"{NAME}-*.fc*.noarch.rpm")
    check_rpm(rpm, fedora_python(), tmp_path)


def test_rhel9_rpm_for_python39(release: Path, tmp_path: Path) -> None:
    (rpm,) = release.glob(f"{NAME}-*.el9.noarch.rpm")
    check_rpm(rpm, "3.9", tmp_path)
    (srpm,) = release.glob(f"{NAME}-*.el9.src.rpm")
    sources = commands.run("rpm", "-qpl", str(srpm)).stdout.split()
    assert sources == [f"{NAME}.spec", f"oci_multihome_hook-{version()}.tar.gz"], sources


def test_spec_and_changelog_say_the_metadatas_version() -> None:
    spec = SPEC.read_text()
    assert not re.findall(r"@[A-Z_]+@", spec), "placeholders: the spec must build as it is"
    (spec_version,) = re.findall(r"^Version:\s*(\S+)$", spec, re.MULTILINE)
    assert spec_version == version()
    newest = re.search(r"^%changelog\n\*.* - (\S+)$", spec, re.MULTILINE)
    assert newest is not None and newest.group(1).startswith(f"{version()}-"), newest
    changelog = (commands.REPO / "CHANGELOG.md").read_text()
    first = re.search(r"^## (\S+)", changelog, re.MULTILINE)
    assert first is not None and first.group(1) == version(), first
