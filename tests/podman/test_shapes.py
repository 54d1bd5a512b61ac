"""Network shapes on the host's podman 4.3 (testlab/shapes.py): every mode,
measured to the far host and from it, for each runtime and network backend.

Podman 4.3 leaves every container interface with the namespace's strict
rp_filter: each shape with two uplinks loses packets without the hook, and
each test of "no annotation" shows it first. The macvlan and ipvlan networks'
parent is a veth of this run whose other end, in the far host's namespace,
holds their gateway (network.l2_segment); netavark 1.4 has no ipvlan driver
("unsupported driver ipvlan"): bridge + ipvlan runs with CNI only.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testlab import commands, lab, network, shapes
from testlab.shapes import (
    BRIDGE_IPVLAN,
    BRIDGE_MACVLAN,
    DUAL_STACK,
    INTERNAL_BRIDGE,
    MODES,
    PORT_TWO_BRIDGES,
    PUBLISHED_PORT,
    TCP_PORT,
    TWO_BRIDGES,
    TWO_MACVLANS,
    Shape,
)

# netavark 1.4 has no ipvlan driver; this machine's kernel no ipvlan at all.
SHAPES_OF = {"netavark": (TWO_BRIDGES, BRIDGE_MACVLAN, INTERNAL_BRIDGE, DUAL_STACK,
                          PORT_TWO_BRIDGES, PUBLISHED_PORT, TWO_MACVLANS),
             "cni": tuple(s for s in (TWO_BRIDGES, BRIDGE_MACVLAN, BRIDGE_IPVLAN)
                          if s in shapes.SHAPES)}
# Each backend's matrix once, under one runtime each: what a shape loses is
# the kernel's and the backend's doing, the runtime only starts the hook
# (which every other podman test runs under both).
RUNTIME_OF = {"netavark": "runc", "cni": "crun"}
# Netavark 1.4 and CNI loosen nothing: every filtering counts.
MATRIX = [pytest.param((backend, RUNTIME_OF[backend]), shape, mode, filtering,
                       id=f"{RUNTIME_OF[backend]}-{backend}-{shape.name}-{mode}"
                       + ("" if filtering == "strict" else f"-{filtering} filtering"))
          for backend in lab.BACKENDS for shape in SHAPES_OF[backend] for mode in MODES
          for filtering in shapes.filterings(shape, mode, loosened=False)]


@pytest.fixture(scope="module")
def setup(request: pytest.FixtureRequest, podman_lab: lab.Podman) -> lab.Podman:
    """The lab's podman with the parameter's network backend and runtime."""
    backend, runtime = request.param
    return podman_lab.variant(runtime=runtime, backend=backend)


@pytest.fixture(scope="module")
def segments(podman_lab: lab.Podman) -> Iterator[dict[str, str]]:
    """Parents for the macvlan and the ipvlan networks (a parent takes one
    kind only) and for a second macvlan: kind -> parent. The first two on
    the slot's network 5, halved; the second macvlan on a quarter of 6."""
    slot = podman_lab.slot
    with network.l2_segment(slot, "mv", f"{slot.prefix(5)}1/25") as mv, \
            network.l2_segment(slot, "iv", f"{slot.prefix(5)}129/25") as iv, \
            network.l2_segment(slot, "mw", f"{slot.prefix(6)}193/26") as mw:
        yield {"macvlan": mv, "ipvlan": iv, "macvlan2": mw}


@pytest.fixture(scope="module")
def shape_networks(setup: lab.Podman, segments: dict[str, str], nets: list[str],
                   dual_nets: list[str]) -> Iterator[dict[Shape, list[str]]]:
    """The networks of each shape this backend can make: the session's
    bridges (netavark) or the backend's own; macvlan and ipvlan on the
    segments (the same subnets for each backend: a backend sees only its
    own networks, and these put no address on the host)."""
    slot, backend = setup.slot, setup.backend
    l2 = {"macvlan": (f"{slot.prefix(5)}0/25", f"{slot.prefix(5)}1"),
          "ipvlan": (f"{slot.prefix(5)}128/25", f"{slot.prefix(5)}129"),
          "macvlan2": (f"{slot.prefix(6)}192/26", f"{slot.prefix(6)}193")}
    needed = {kind for shape in SHAPES_OF[backend] for kind in shape.kinds}
    if TWO_MACVLANS in SHAPES_OF[backend]:
        needed.add("macvlan2")
    kinds = [kind for kind in l2 if kind in needed]
    options = [["--driver", kind.rstrip("2"), "--gateway", l2[kind][1], "--opt",
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
        found = {TWO_BRIDGES: bridges, PORT_TWO_BRIDGES: bridges, DUAL_STACK: dual_nets}
        for shape in (BRIDGE_MACVLAN, BRIDGE_IPVLAN, INTERNAL_BRIDGE, PUBLISHED_PORT):
            if shape.kinds[1] in named:
                found[shape] = [bridges[0], named[shape.kinds[1]]]
        if "macvlan2" in named:
            found[TWO_MACVLANS] = [named["macvlan"], named["macvlan2"]]
        yield {shape: found[shape] for shape in SHAPES_OF[backend]}


@pytest.mark.parametrize(("setup", "shape", "mode", "filtering"), MATRIX, indirect=["setup"])
def test_shape(setup: lab.Podman, shape: Shape, mode: str, filtering: str,
               shape_networks: dict[Shape, list[str]], hooks: Path,
               results: shapes.Results) -> None:
    networks = shapes.pinned(shape_networks[shape])
    # Podman 4.3 leaves every interface strict: two uplinks always lose.
    buggy = len(shape.uplinks) == 2
    # A published port is the host's: one of this slot's own, on the host's
    # end of the far host's link.
    published = (setup.slot.far_link[0], 18000 + setup.slot.number)
    extra = ["-p", f"{published[1]}:{TCP_PORT}"] if shape.port else []
    annotations = shapes.cell_annotations(mode, filtering)
    row = f"{setup.runtime}, {setup.backend}" + (
        "" if filtering == "strict" else f", {filtering} filtering")
    with shapes.container(lambda: setup.container(networks, annotations, hooks, extra), shape,
                          mode, buggy) as c:
        shapes.check_state(c, shape, mode, filtering=filtering)
        shapes.measure_and_check(
            c, shape, mode, buggy, published,
            lambda result, said: results.record(row, shape, mode, result, said),
            lambda: diagnosed(setup, c.name), filtering=filtering)


def diagnosed(podman: lab.Podman, name: str) -> dict[str, Any]:
    """`diagnose --json` of the console script under test."""
    proc = commands.run(str(lab.hook_binary()), "diagnose", "--json", name, check=False,
                        env=podman.env)
    assert proc.returncode in (0, 1), proc.stderr
    found: dict[str, Any] = json.loads(proc.stdout)
    return found
