"""Regression guard for the hook's start-up cost: what each mode imports.

Not a timing test (timings belong to `make bench`): the set of modules the
hook process loads, beyond a bare interpreter, must not grow unnoticed.
Every module is start-up time paid by every annotated `podman run`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from multihome_hook.modes import FIXES, MODES
from testlab.fakens import Namespace

# Measured for off, loose, one-default, source-routing (make test's sets):
#   Python 3.9, pyroute2 0.5.14 (RHEL 9):      14, 25, 64, 64
#   Python 3.10, pyroute2 0.6.4 (Ubuntu 22.04): 14, 24, 50, 50
#   Python 3.11, pyroute2 0.7.2 (Debian 12):    14, 25, 69, 69
#   Python 3.13, pyroute2 0.9.7:                14, 19, 57, 57
# (3.9 to 3.11 enter the namespace with ctypes: os.setns came in 3.12.)
# podman never starts the hook for `off` (the JSON's `when`); it is measured
# all the same. The route modes pay for what pyroute2's message classes
# import (socket, threading, typing, collections: docs/performance.md).
BUDGET = {"off": 15, "loose": 26, "one-default": 71, "source-routing": 71}
# Never on the hook's path: each costs 10-200 ms; logging, traceback and
# selectors, which pyroute2 and socket import but the hook never uses (~11
# ms), are deferred by lean_import.py; importlib.util imports typing on 3.9.
FORBIDDEN = ("pydantic", "asyncio", "dataclasses", "inspect", "ipaddress", "unittest",
             "argparse", "pyroute2.iproute", "pyroute2.ndb", "pyroute2.ipdb", "pyroute2.nslink",
             "logging", "traceback", "selectors", "importlib.util")
# Where no netlink is needed (pyroute2 imports them): not even `typing` (~3
# ms), `json` (its decoder needs `re`) or `re`, `enum`, `collections` (~4 ms).
WITHOUT_NETLINK = [m.name for m in MODES if not m.routes]
LEAN = ("typing", "json", "re", "enum", "collections")

# The hook ends with os._exit (no teardown): report the modules from there.
_PROBE = """
import os, sys
before = set(sys.modules)
exit_now = os._exit
def report_and_exit(code):
    print(" ".join(sorted(set(sys.modules) - before)), flush=True)
    exit_now(code)
os._exit = report_and_exit
from multihome_hook.hook import main
main()
"""


def loaded_modules(state: dict[str, object]) -> set[str]:
    proc = subprocess.run([sys.executable, "-I", "-c", _PROBE], input=json.dumps(state),
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


def check(modules: set[str], forbidden: tuple[str, ...], budget: int, what: str) -> None:
    heavy = sorted(m for m in modules
                   if any(m == f or m.startswith(f + ".") for f in forbidden))
    assert not heavy, f"{what} imports {heavy}"
    assert len(modules) <= budget, f"{what}: {len(modules)} modules: {sorted(modules)}"


def state(pid: int, mode: str) -> dict[str, object]:
    return {"ociVersion": "1.0.2", "id": "c" * 64, "pid": pid,
            "annotations": {"io.multihome.mode": mode}}


@pytest.mark.parametrize("mode", [m.name for m in MODES])
def test_import_set_stays_small(make_ns: Callable[..., Namespace], mode: str) -> None:
    ns = make_ns(2)
    forbidden = FORBIDDEN + (LEAN if mode in WITHOUT_NETLINK else ())
    check(loaded_modules(state(ns.pid, mode)), forbidden, BUDGET[mode], f"mode {mode}")


@pytest.mark.parametrize("mode", [m.name for m in FIXES])
@pytest.mark.parametrize("networks", [0, 1])
def test_fewer_than_two_uplinks_cost_what_loose_costs(make_ns: Callable[..., Namespace],
                                                      mode: str, networks: int) -> None:
    """A host-wide default sends every container through the hook: one that
    has nothing to fix must not pay for netlink."""
    ns = make_ns(networks)
    check(loaded_modules(state(ns.pid, mode)), (*FORBIDDEN, *LEAN, "pyroute2"),
          BUDGET["loose"], f"mode {mode} on {networks} network(s)")


def test_host_network_costs_what_loose_costs() -> None:
    check(loaded_modules(state(os.getpid(), "source-routing")),
          (*FORBIDDEN, *LEAN, "pyroute2", "ctypes"), BUDGET["loose"], "--network host")
