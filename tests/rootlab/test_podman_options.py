"""Podman's own options, measured against the hook in the root labs (the
README's "Before you install: podman's own options").

The shape: a bridge with a port published on it, beside a macvlan onto the
LAN, on a strict host (the lab's hook makes every container strict, as on
RHEL; netavark loosens the bridge's veth). The bridge is made with
`--opt metric=50` (its default always comes first: what `one-default`
does with the bridge as primary) or `--opt no_default_route=true` (no
default through it at all: `one-default` with the macvlan as primary, and
the hook then sees a single uplink). Measured without the hook and with
`source-routing`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testlab import shapes
from testlab.labnet import LAB_ADDRESS, MACVLAN, PUBLISHED_PORT, Network
from testlab.rootlab import Lab
from testlab.shapes import MODES, PORT_CASE, TCP_PORT

SHAPE = shapes.PUBLISHED_PORT  # eth0 the bridge, the port on it; eth1 the macvlan
OPTIONS: dict[str, tuple[Network, str]] = {
    "metric=50": (Network("mh5o", "198.18.15.0/24", "198.18.15.1"), "metric=50"),
    # netavark 2 takes `true` only (podman #29114); netavark 1 takes it too.
    "no_default_route": (Network("mh5r", "198.18.16.0/24", "198.18.16.1"),
                         "no_default_route=true"),
}
BROKEN, FINE = 90.0, 10.0  # % lost or failed: what a case that fails, or works, shows
OPTION_RESULTS = shapes.Results("podman's own options", "MULTIHOME_OPTIONS_RESULTS")


@pytest.fixture(scope="module")
def option_networks(lab: Lab) -> Iterator[None]:
    """The two bridges, made with their option in this lab; removed after."""
    for net, option in OPTIONS.values():
        *argv, name = net.create_argv()
        lab.podman(*argv, "--opt", option, name)
    try:
        yield
    finally:
        for net, _ in OPTIONS.values():
            lab.podman("network", "rm", "-f", net.name, check=False)
        for line in OPTION_RESULTS.markdown():
            print(line)


@pytest.mark.parametrize("mode", ["no annotation", "source-routing"])
@pytest.mark.parametrize("option", OPTIONS)
def test_option(lab: Lab, option_networks: None, option: str, mode: str) -> None:
    bridge, _ = OPTIONS[option]
    networks = shapes.pinned([bridge.name, MACVLAN.name])
    extra = ["-p", f"{PUBLISHED_PORT}:{TCP_PORT}"]
    with lab.container(networks, MODES[mode], "crun", extra) as c:
        defaults = sorted(str(route.get("dev")) for route in c.default_routes())
        result = shapes.measure(c, SHAPE, (LAB_ADDRESS, PUBLISHED_PORT))
    OPTION_RESULTS.record(f"{lab.stack.name}, {option}", SHAPE, mode, result)
    shown = f"{option}, {mode}: defaults {defaults}: {result}"
    print(shown)
    assert result["unbound"] <= FINE, shown
    if option == "metric=50":
        # Both defaults stay; the bridge's comes first. Without the hook the
        # macvlan's uplink is dead for what is bound to it or comes in on it.
        if mode == "no annotation":
            assert result[PORT_CASE] <= FINE and result["-I eth1"] >= BROKEN, shown
            assert result["TCP in eth1"] >= BROKEN, shown
        else:
            assert max(result.values()) <= FINE, shown
    else:
        # The bridge has no default route, with the hook or without: it
        # answers its own subnet only; the published port never answers.
        assert defaults == ["eth1"], shown
        assert result[PORT_CASE] >= BROKEN and result["-I eth0"] >= BROKEN, shown
        assert result["-I eth1"] <= FINE and result["TCP in eth1"] <= FINE, shown
