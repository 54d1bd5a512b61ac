"""The wheel each supported setuptools builds from this tree, on the host.

RHEL 9 (EPEL) ships setuptools 53, Ubuntu 22.04 59.6, Debian 12 66.1.1:
each, with its distribution's Python and wheel, and the newest setuptools
from PyPI on the newest Python build the wheel from a copy of the tree
through the PEP 517 hooks, as a distribution's build does without
isolation (pip wheel --no-build-isolation, python -m build --no-isolation).
setuptools before 61 ignores a [project] table in pyproject.toml and
builds an empty UNKNOWN-0.0.0 wheel without a word: the wheel is opened
and its modules, metadata and console script checked. A deprecation
warning of setuptools fails the build (the newest one warns years before
it refuses).

Each setuptools is installed from PyPI once into a venv of its own under
build/setuptools-venvs (kept: reruns take seconds); the newest is looked
up on PyPI every run. No PyPI or no interpreter: skipped, failed under
CI=true.
"""

from __future__ import annotations

import configparser
import email.parser
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from testlab import commands, pythons
from testlab.policy import require

REPO = commands.REPO
VENVS = REPO / "build" / "setuptools-venvs"
PIP = ("-m", "pip", "--disable-pip-version-check", "--no-input")
PYPI_TIMEOUT = 300

# What the wheel must say (the floors: RHEL 9's EPEL pyroute2, Ubuntu
# 22.04's pydantic; pyroute2's newest minor tested, as the deb and the RPM say).
REQUIRES_DIST = {"pyroute2<0.10,>=0.5.14", "pydantic>=1.8.2"}
EXTRAS = {"test", "lint"}
CONSOLE_SCRIPT = ("oci-multihome-hook", "multihome_hook.hook:main")


@dataclass(frozen=True)
class Setuptools:
    """A distribution's setuptools, with its Python and wheel (None: the newest)."""

    name: str
    setuptools: str | None
    wheel: str | None
    python: str | None


CASES = (
    Setuptools("rhel9", "53.0.0", "0.36.2", "3.9"),
    Setuptools("ubuntu2204", "59.6.0", "0.37.1", "3.10"),
    Setuptools("debian12", "66.1.1", "0.38.4", "3.11"),
    # The newest needs no wheel (its get_requires_for_build_wheel says so).
    Setuptools("newest", None, None, None),
)

# Run by the venv's Python in the copy of the tree: the PEP 517 hooks, any
# deprecation warning of setuptools an error; argv: the wheel's directory,
# the report (JSON). What get_requires_for_build_wheel asks for must be in
# the venv already: a distribution's build does not fetch it either.
BUILD = """
import importlib.metadata, json, re, sys, warnings
out, report = sys.argv[1:3]
import setuptools
warnings.simplefilter("error", setuptools.SetuptoolsDeprecationWarning)
import setuptools.build_meta as backend
requires = backend.get_requires_for_build_wheel()
for requirement in requires:
    importlib.metadata.version(re.split("[^A-Za-z0-9_.-]", requirement)[0])
wheel = backend.build_wheel(out)
with open(report, "w") as f:
    json.dump({"setuptools": setuptools.__version__, "requires": requires, "wheel": wheel}, f)
"""


def setup_cfg_version() -> str:
    config = configparser.ConfigParser(interpolation=None)
    with open(REPO / "setup.cfg") as f:
        config.read_file(f)
    return config["metadata"]["version"]


def interpreter(case: Setuptools) -> str:
    """The case's Python, as the Makefile's sets find theirs (Debian 12's
    own python3.11 first); the newest: the one running the tests."""
    if case.python is None:
        return sys.executable
    own = Path(f"/usr/bin/python{case.python}")
    found = str(own) if case.name == "debian12" and own.exists() else pythons.find(case.python)
    require(found is not None,
            f"needs Python {case.python} (pyenv's, or python{case.python} on PATH)")
    assert found is not None
    return found


def pip(python: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """pip, from PyPI; unreachable (or refusing): skipped, failed under CI=true."""
    proc = commands.run(python, *PIP, *argv, check=False, timeout=PYPI_TIMEOUT)
    require(proc.returncode == 0,
            f"pip {' '.join(argv)} failed (no PyPI?): {proc.stderr.strip()[-500:]}")
    return proc


def newest_setuptools() -> str:
    listing = pip(sys.executable, "index", "versions", "setuptools").stdout
    found = re.match(r"setuptools \(([^)]+)\)", listing)
    assert found is not None, listing
    return found.group(1)


def venv(case: Setuptools, python: str) -> Path:
    """A venv of `python` with the case's setuptools and wheel, made once."""
    version = case.setuptools or newest_setuptools()
    full = commands.run(python, "-c", "import platform; print(platform.python_version())")
    key = f"{case.name}-setuptools-{version}-py{full.stdout.strip()}"
    want = {"python": os.path.realpath(python), "setuptools": version, "wheel": case.wheel}
    path = VENVS / key
    stamp = path / ".installed"
    VENVS.mkdir(parents=True, exist_ok=True)
    with open(VENVS / f"{case.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and json.loads(stamp.read_text()) == want:
            return path
        # An older venv of this case (the newest setuptools moved on, the
        # interpreter changed) or a half-made one.
        for old in VENVS.glob(f"{case.name}-setuptools-*"):
            shutil.rmtree(old)
        commands.run(python, "-m", "venv", str(path), timeout=PYPI_TIMEOUT)
        pins = [f"setuptools=={version}", *([f"wheel=={case.wheel}"] if case.wheel else [])]
        pip(str(path / "bin" / "python"), "install", "-q", *pins)
        stamp.write_text(json.dumps(want))
    return path


def copy_of_tree(to: Path) -> Path:
    """The tree as packaging/build.sh stages it: no VCS, venvs, build output
    or egg-info (which old setuptools would read back)."""
    top = {".git", "dist", "build", "bench-results", "debian"}

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n.endswith(".egg-info") or n in {
            "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}}
        if Path(directory) == REPO:
            skipped |= {n for n in names if n in top or n.startswith(".venv")}
        return skipped

    shutil.copytree(REPO, to, ignore=ignore, symlinks=True)
    return to


def test_the_floor_is_the_oldest_setuptools_tested() -> None:
    """pyproject.toml's [build-system] requires names the oldest tested here."""
    pyproject = (REPO / "pyproject.toml").read_text()
    found = re.search(r'^requires = \["setuptools>=([0-9.]+)"', pyproject, re.MULTILINE)
    assert found is not None
    oldest = CASES[0].setuptools
    assert oldest is not None and oldest.split(".")[0] == found.group(1), (oldest, found.group(1))
    assert "[project]" not in pyproject, \
        "the metadata is setup.cfg's: setuptools < 61 ignores [project]"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_wheel(case: Setuptools, tmp_path: Path) -> None:
    python = interpreter(case)
    env = venv(case, python)
    tree = copy_of_tree(tmp_path / "tree")
    out = tmp_path / "out"
    out.mkdir()
    report_file = tmp_path / "report.json"
    proc = subprocess.run([str(env / "bin" / "python"), "-c", BUILD, str(out), str(report_file)],
                          cwd=tree, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "deprecat" not in log.lower(), log
    report = json.loads(report_file.read_text())
    assert case.setuptools in (None, report["setuptools"]), report

    version = setup_cfg_version()
    assert report["wheel"] == f"oci_multihome_hook-{version}-py3-none-any.whl", report
    dist_info = f"oci_multihome_hook-{version}.dist-info"
    with zipfile.ZipFile(out / report["wheel"]) as wheel:
        names = wheel.namelist()
        metadata = email.parser.Parser().parsestr(wheel.read(f"{dist_info}/METADATA").decode())
        entry_points = configparser.ConfigParser(interpolation=None)
        entry_points.read_string(wheel.read(f"{dist_info}/entry_points.txt").decode())

    package = REPO / "src" / "multihome_hook"
    modules = {f"multihome_hook/{p.relative_to(package).as_posix()}" for p in package.rglob("*.py")}
    assert {n for n in names if n.endswith(".py")} == modules
    assert all(n.startswith(("multihome_hook/", f"{dist_info}/")) for n in names), names
    assert any(n.startswith(f"{dist_info}/") and n.endswith("/LICENSE") for n in names), names

    assert metadata["Name"] == "oci-multihome-hook"
    assert metadata["Version"] == version
    assert metadata["Requires-Python"] == ">=3.9"
    # setuptools < 61 writes "pyroute2 (<0.10,>=0.5.14)", the newest "pyroute2<0.10,>=0.5.14".
    requires = [re.sub(r"[\s()]", "", r) for r in metadata.get_all("Requires-Dist", [])]
    assert {r for r in requires if ";" not in r} == REQUIRES_DIST, requires
    assert set(metadata.get_all("Provides-Extra", [])) == EXTRAS
    assert "Apache-2.0" in (metadata["License-Expression"], metadata["License"]), metadata.items()
    assert metadata["Description-Content-Type"] == "text/markdown"
    description = metadata.get_payload()
    assert isinstance(description, str) and description.lstrip().startswith("# oci-multihome-hook")
    name, target = CONSOLE_SCRIPT
    assert entry_points["console_scripts"][name] == target
