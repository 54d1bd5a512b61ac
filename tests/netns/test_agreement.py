"""The hook and `apply` decide alike: the same mode on the same fresh
namespace (one uplink or two, strict filtering as on a RHEL host) leaves
the same routes, rules and sysctls, whichever of the two made it; and
`diagnose` lists what `apply` then changes (nothing on one uplink)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from multihome_hook.modes import FIXES
from testlab.fakens import Namespace
from testlab.settings import hook_binary

MakeNs = Callable[..., Namespace]


def strict(ns: Namespace, uplinks: int) -> Namespace:
    """Strict filtering, as a RHEL host's containers get it."""
    for key in ("all", "default", *(f"eth{i}" for i in range(uplinks))):
        ns.sysctl(key, 1)
    return ns


@pytest.mark.parametrize("mode", [m.name for m in FIXES])
@pytest.mark.parametrize("uplinks", [1, 2])
def test_the_hook_and_apply_leave_a_namespace_alike(make_ns: MakeNs, mode: str,
                                                    uplinks: int) -> None:
    by_hook, by_apply = strict(make_ns(uplinks), uplinks), strict(make_ns(uplinks), uplinks)
    assert by_hook.state() == by_apply.state()
    state = {"ociVersion": "1.0.2", "id": "a" * 64, "pid": by_hook.pid,
             "annotations": {"io.multihome.mode": mode}}
    hooked = subprocess.run([str(hook_binary())], input=json.dumps(state), text=True,
                            capture_output=True, timeout=30)
    assert (hooked.returncode, hooked.stderr) == (0, "")
    diagnosed = run_json("diagnose", f"pid:{by_apply.pid}")
    applied = run_json("apply", "--mode", mode, f"pid:{by_apply.pid}")
    assert by_hook.state() == by_apply.state(), applied
    (report,) = diagnosed["containers"]
    (result,) = applied["containers"]
    assert report["fixes"][mode] == result["changes"], (report, result)
    assert bool(result["changes"]) == (uplinks > 1), result


def run_json(*argv: str) -> dict[str, Any]:
    proc = subprocess.run([str(hook_binary()), *argv, "--json"], text=True,
                          capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode in (0, 1) and proc.stderr == "", proc.stderr
    found: dict[str, Any] = json.loads(proc.stdout)
    return found
