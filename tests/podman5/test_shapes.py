"""Network shapes in the podman 5 lab (testlab/shapes.py): every mode,
measured to the far host and from it, under crun and runc.

netavark >= 1.11 loosens rp_filter on bridge veths: two bridges (IPv4 or
dual stack) lose nothing without the hook, a bridge next to a macvlan or
an ipvlan network (strict) does, and the tests of "no annotation" show it
first, in the failing order of the default routes (lab.failing_order).
"""

from __future__ import annotations

import pytest

from testlab import shapes
from testlab.podman5 import (
    BRIDGE_A,
    BRIDGE_B,
    DUAL_A,
    DUAL_B,
    INTERNAL,
    IPVLAN,
    MACVLAN,
    Lab,
    Network,
)
from testlab.shapes import MODES, Shape

RUNTIMES = ("crun", "runc")
NETWORKS: dict[Shape, tuple[Network, Network]] = {
    shapes.TWO_BRIDGES: (BRIDGE_A, BRIDGE_B),
    shapes.BRIDGE_MACVLAN: (BRIDGE_A, MACVLAN),
    shapes.BRIDGE_IPVLAN: (BRIDGE_A, IPVLAN),
    shapes.INTERNAL_BRIDGE: (BRIDGE_A, INTERNAL),
    shapes.DUAL_STACK: (DUAL_A, DUAL_B),
}
# The lab's hook (strict, as a RHEL host) then the project's: for `loose`.
TAGS = ["mhlab-rp-filter", "oci-multihome-hook"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", shapes.SHAPES, ids=lambda shape: shape.name)
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_shape(lab5: Lab, runtime: str, shape: Shape, mode: str,
               results: shapes.Results) -> None:
    buggy = any(kind in ("macvlan", "ipvlan") for kind in shape.kinds)
    networks = shapes.pinned([net.name for net in NETWORKS[shape]])
    with shapes.container(lambda: lab5.container(networks, MODES[mode], runtime), shape, mode,
                          buggy) as c:
        if not MODES[mode]:
            # netavark loosens bridges only; the lab's hook made the rest strict
            rp = c.rp_filter()
            for dev, kind in zip(shapes.DEVICES, shape.kinds):
                assert rp[dev] == (1 if kind in ("macvlan", "ipvlan") else 2), rp
        shapes.check_state(c, shape, mode)
        if mode == "loose" and len(shape.uplinks) == 2:
            tags = [line.split(": ", 1)[0].split()[-1].split("[")[0] for line in lab5.syslog()
                    if f"container {c.id[:12]}:" in line]
            assert tags == TAGS, tags
        result = shapes.measure(c, shape)
        results.record(runtime, shape, mode, result)
        shapes.check_result(result, shape, mode, buggy)
