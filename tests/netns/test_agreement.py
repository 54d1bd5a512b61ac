"""The hook and `apply` decide alike: the same mode on the same fresh
namespace (one uplink or two, strict filtering as on a RHEL host) leaves
the same routes, rules and sysctls, whichever of the two made it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import pytest

from testlab.fakens import Namespace
from testlab.lab import hook_binary

MakeNs = Callable[..., Namespace]
MODES = ("loose", "one-default", "source-routing")


def strict(ns: Namespace, uplinks: int) -> Namespace:
    """Strict filtering, as a RHEL host's containers get it."""
    for key in ("all", "default", *(f"eth{i}" for i in range(uplinks))):
        ns.sysctl(key, 1)
    return ns


@pytest.mark.parametrize("mode", MODES)
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
    applied = subprocess.run([str(hook_binary()), "apply", "--mode", mode,
                              f"pid:{by_apply.pid}"], text=True, capture_output=True,
                             timeout=30)
    assert (applied.returncode, applied.stderr) == (0, ""), applied.stdout
    assert by_hook.state() == by_apply.state(), applied.stdout
