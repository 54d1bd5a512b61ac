"""Network shapes on the host's podman 4.3 (testlab/shapes.py): every mode,
measured to the far host and from it, for each runtime and network backend.

Podman 4.3 leaves every container interface with the namespace's strict
rp_filter: each shape with two uplinks loses packets without the hook, and
each test of "no annotation" shows it first. The macvlan and ipvlan networks'
parent is a veth of this run whose other end, in the far host's namespace,
holds their gateway (lab.l2_segment); netavark 1.4 has no ipvlan driver
("unsupported driver ipvlan"): bridge + ipvlan runs with CNI only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from testlab import lab, shapes
from testlab.shapes import (
    BRIDGE_IPVLAN,
    BRIDGE_MACVLAN,
    DUAL_STACK,
    INTERNAL_BRIDGE,
    MODES,
    TWO_BRIDGES,
    Shape,
)

# netavark 1.4 has no ipvlan driver; this machine's kernel no ipvlan at all.
SHAPES_OF = {"netavark": (TWO_BRIDGES, BRIDGE_MACVLAN, INTERNAL_BRIDGE, DUAL_STACK),
             "cni": tuple(s for s in (TWO_BRIDGES, BRIDGE_MACVLAN, BRIDGE_IPVLAN)
                          if s in shapes.SHAPES)}
MATRIX = [pytest.param(backend, shape, mode, id=f"{backend}-{shape.name}-{mode}")
          for backend in lab.BACKENDS for shape in SHAPES_OF[backend] for mode in MODES]


@pytest.fixture(scope="module")
def setup(request: pytest.FixtureRequest, podman: lab.Podman) -> lab.Podman:
    """The `podman` fixture's runtime with the parameter's network backend."""
    return podman.variant(backend=request.param)


@pytest.fixture(scope="module")
def segments(podman_lab: lab.Podman) -> Iterator[dict[str, str]]:
    """Parents for the macvlan and the ipvlan networks (a parent takes one
    kind only): kind -> parent. Both on the slot's network 5, halved."""
    slot = podman_lab.slot
    with lab.l2_segment(slot, "mv", f"{slot.prefix(5)}1/25") as mv, \
            lab.l2_segment(slot, "iv", f"{slot.prefix(5)}129/25") as iv:
        yield {"macvlan": mv, "ipvlan": iv}


@pytest.fixture(scope="module")
def shape_networks(setup: lab.Podman, segments: dict[str, str], nets: list[str],
                   dual_nets: list[str]) -> Iterator[dict[Shape, list[str]]]:
    """The networks of each shape this backend can make: the session's
    bridges (netavark) or the backend's own; macvlan and ipvlan on the
    segments (the same subnets for each backend: a backend sees only its
    own networks, and these put no address on the host)."""
    slot, backend = setup.slot, setup.backend
    l2 = {"macvlan": (f"{slot.prefix(5)}0/25", f"{slot.prefix(5)}1"),
          "ipvlan": (f"{slot.prefix(5)}128/25", f"{slot.prefix(5)}129")}
    kinds = [kind for kind in l2 if any(kind in s.kinds for s in SHAPES_OF[backend])]
    options = [["--driver", kind, "--gateway", l2[kind][1], "--opt",
                f"parent={segments[kind]}"] + (["--opt", "mode=l2"] if kind == "ipvlan" else [])
               for kind in kinds]
    subnets = [l2[kind][0] for kind in kinds]
    if backend == "netavark":
        bridges = nets[:2]
        subnets.append(f"{slot.prefix(6)}0/26")
        options.append(["--internal"])
    else:  # bridges of its own, apart from the session's netavark ones
        subnets += [f"{slot.prefix(6)}64/26", f"{slot.prefix(6)}128/26"]
    with contextlib.ExitStack() as stack:
        made = stack.enter_context(lab.networks(setup, subnets, prefix=f"mhsh{backend[0]}",
                                                options=options))
        named = dict(zip(kinds, made))
        if backend != "netavark":
            bridges = made[len(kinds):len(kinds) + 2]
        else:
            named["internal"] = made[len(kinds)]
        found = {TWO_BRIDGES: bridges, DUAL_STACK: dual_nets}
        for shape in (BRIDGE_MACVLAN, BRIDGE_IPVLAN, INTERNAL_BRIDGE):
            if shape.kinds[1] in named:
                found[shape] = [bridges[0], named[shape.kinds[1]]]
        yield {shape: found[shape] for shape in SHAPES_OF[backend]}


@pytest.mark.parametrize(("setup", "shape", "mode"), MATRIX, indirect=["setup"])
def test_shape(setup: lab.Podman, shape: Shape, mode: str,
               shape_networks: dict[Shape, list[str]], hooks: Path,
               results: shapes.Results) -> None:
    networks = shapes.pinned(shape_networks[shape])
    # Podman 4.3 leaves every interface strict: two uplinks always lose.
    buggy = len(shape.uplinks) == 2
    with shapes.container(lambda: setup.container(networks, MODES[mode], hooks), shape, mode,
                          buggy) as c:
        shapes.check_state(c, shape, mode)
        result = shapes.measure(c, shape)
        results.record(f"{setup.runtime}, {setup.backend}", shape, mode, result)
        shapes.check_result(result, shape, mode, buggy)
