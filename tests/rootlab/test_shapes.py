"""Network shapes in the root labs (testlab/shapes.py): every mode and host
filtering, measured to the far host and from it, under crun, on each stack,
with `diagnose --json` held against each measurement.

Podman 4.3 (netavark 1.4) leaves every interface with the filtering the
container starts with: under strict filtering two uplinks always lose.
netavark >= 1.11 loosens rp_filter on bridge veths: two bridges (IPv4 or
dual stack) lose nothing without the hook (on a RHEL-like host too: udev
makes the host's bridges strict again, not the container's veths; what
that host's bridges drop is replies that leave by the wrong one). A bridge next to a macvlan or
an ipvlan network (strict) does on podman 5, where both defaults have
metric 100 in no fixed order: the tests of "no annotation" show it in the
failing order (lab.failing_order). netavark 2.0 (podman 6) gives the
macvlan metric 99: everything leaves by the macvlan, and the bridge's
address, a published port on it included, never gets a reply back. Two
macvlans lose packets on both.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from testlab import shapes
from testlab.labnet import (
    BRIDGE_A,
    BRIDGE_B,
    DUAL_A,
    DUAL_B,
    INTERNAL,
    IPVLAN,
    LAB_ADDRESS,
    MACVLAN,
    MACVLAN_B,
    PUBLISHED_PORT,
    Network,
)
from testlab.rootlab import Lab
from testlab.shapes import MODES, TCP_PORT, Shape

# crun, the default runtime of Debian 13, Fedora and RHEL: the losses are
# the kernel's and netavark's; the hook under runc is in the other tests.
RUNTIMES = ("crun",)
NETWORKS: dict[Shape, tuple[Network, Network]] = {
    shapes.TWO_BRIDGES: (BRIDGE_A, BRIDGE_B),
    shapes.BRIDGE_MACVLAN: (BRIDGE_A, MACVLAN),
    shapes.BRIDGE_IPVLAN: (BRIDGE_A, IPVLAN),
    shapes.INTERNAL_BRIDGE: (BRIDGE_A, INTERNAL),
    shapes.DUAL_STACK: (DUAL_A, DUAL_B),
    shapes.PORT_TWO_BRIDGES: (BRIDGE_A, BRIDGE_B),
    shapes.PUBLISHED_PORT: (BRIDGE_A, MACVLAN),
    shapes.TWO_MACVLANS: (MACVLAN, MACVLAN_B),
}
# The lab's hook (strict, as a RHEL host) then the project's: for `loose`.
TAGS = ["mhlab-rp-filter", "oci-multihome-hook"]


# Every cell of any stack; conftest.py deselects those a stack does not make
# (shapes.applies).
CELLS = [pytest.param(shape, mode, filtering, id=f"{shape.name}-{mode}"
                      + ("" if filtering == "strict" else f"-{filtering} filtering"))
         for shape in shapes.SHAPES for mode in MODES
         for filtering in shapes.filterings(shape, mode, loosened=False)]


@pytest.mark.matrix
@pytest.mark.parametrize(("shape", "mode", "filtering"), CELLS)
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_shape(lab: Lab, runtime: str, shape: Shape, mode: str, filtering: str,
               results: shapes.Results) -> None:
    # Without the hook: podman 4 loses on any two uplinks under strict
    # filtering, later ones only where netavark did not loosen, under strict
    # filtering; made in the order that fails (shapes.container) then.
    buggy = filtering == "strict" and (
        len(shape.uplinks) == 2 if not lab.stack.loosens_bridges
        else any(kind in ("macvlan", "ipvlan") for kind in shape.kinds))
    networks = shapes.pinned([net.name for net in NETWORKS[shape]])
    metric = lab.stack.metric
    extra = ["-p", f"{PUBLISHED_PORT}:{TCP_PORT}"] if shape.port else []
    annotations = shapes.cell_annotations(mode, filtering)
    setup = f"{lab.stack.name}, {runtime}" + (
        "" if filtering == "strict" else f", {filtering} filtering")
    with shapes.container(lambda: lab.container(networks, annotations, runtime, extra), shape,
                          mode, buggy, metric) as c:
        if not MODES[mode]:
            # netavark >= 1.11 loosens bridges only; the lab's hook set the rest
            rp, start = c.rp_filter(), shapes.FILTERINGS[filtering]
            for dev, kind in zip(shapes.DEVICES, shape.kinds):
                loosened = lab.stack.loosens_bridges and kind not in ("macvlan", "ipvlan")
                assert rp[dev] == (2 if loosened else start), rp
        shapes.check_state(c, shape, mode, metric, filtering)
        if mode == "loose" and len(shape.uplinks) == 2:
            tags = [line.split(": ", 1)[0].split()[-1].split("[")[0] for line in lab.syslog()
                    if f"container {c.id[:12]}:" in line]
            assert tags == TAGS, tags
        shapes.measure_and_check(
            c, shape, mode, buggy, (LAB_ADDRESS, PUBLISHED_PORT),
            lambda result, said: results.record(setup, shape, mode, result, said),
            lambda: diagnosed(lab, c.name), metric, filtering, lab.stack.rhel)


def diagnosed(lab: Lab, name: str) -> dict[str, Any]:
    """`diagnose --json` of the deb installed in the lab."""
    proc = lab.run("oci-multihome-hook", "diagnose", "--json", name, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    found: dict[str, Any] = json.loads(proc.stdout)
    return found
