"""podman 4.3's CNI backend (RHEL 8's and Ubuntu 22.04's): a container on two
CNI bridges gets two default routes without a metric and, under strict
rp_filter, loses packets to the far host; every mode brings that to 0 %,
under each runtime of the `podman` fixture. Podman 5 has no CNI backend:
there these tests are deselected (tests/conftest.py), and the
report's header says so."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from multihome_hook.modes import FIXES
from testlab.labnet import SPARE_SUBNETS, Network
from testlab.rootlab import Container, Lab

MODE, RP_FILTER = "io.multihome.mode", "io.multihome.rp_filter"
MODES = {
    **{m.name: {MODE: m.name} for m in FIXES},
    **{f"{m.name}+strict": {MODE: m.name, RP_FILTER: "strict"} for m in FIXES if m.takes_strict},
}


@pytest.fixture(scope="module")
def cni_nets(podman_lab: Lab) -> Iterator[list[str]]:
    """Two CNI bridges on subnets no netavark network of the lab holds."""
    cni = podman_lab.using(backend="cni")
    made = [Network(f"mhcni{i}", subnet, subnet.replace(".0/24", ".1"))
            for i, subnet in enumerate(SPARE_SUBNETS)]
    try:
        for net in made:
            cni.podman(*net.create_argv())
        yield [net.name for net in made]
    finally:
        for net in made:
            cni.podman("network", "rm", "-f", net.name, check=False)


def inside(c: Container, *argv: str) -> str:
    """A command run in the container (podman exec, through its runtime)."""
    return c.lab.podman("exec", c.name, *argv).stdout


def rp_filter(c: Container) -> dict[str, int]:
    """rp_filter of all, default and each interface, as the container reads them."""
    confs = ("all", "default", *c.interfaces())
    values = inside(c, "cat", *(f"/proc/sys/net/ipv4/conf/{conf}/rp_filter" for conf in confs))
    return dict(zip(confs, map(int, values.split())))


def test_without_annotation_cni_loses_packets(podman: Lab, cni_nets: list[str]) -> None:
    cni = podman.using(backend="cni")
    with cni.container(cni_nets) as c:
        runtime = cni.podman("inspect", "-f", "{{.OCIRuntime}}", c.name).stdout.strip()
        assert runtime == podman.runtime
        defaults = c.default_routes()
        assert len(defaults) == 2 and not any("metric" in r for r in defaults), defaults
        assert set(rp_filter(c).values()) == {1}, rp_filter(c)
        assert c.loss() > 20


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_fixes_cni(podman: Lab, cni_nets: list[str],
                              mode: str) -> None:
    with podman.using(backend="cni").container(cni_nets, MODES[mode]) as c:
        filters, defaults = rp_filter(c), c.default_routes()
        if mode == "loose":
            assert set(filters.values()) == {2}, filters
            assert len(defaults) == 2, defaults
        else:
            # CNI leaves rp_filter strict: nothing for `strict` to take back.
            assert set(filters.values()) == {1}, filters
            assert len(defaults) == 1, defaults
        if mode.startswith("source-routing"):
            rules = c.ns("ip", "rule").stdout
            for dev, addresses in c.interfaces().items():
                assert f"oif {dev} lookup" in rules, rules
                assert all(f"from {a} lookup" in rules for a in addresses), rules
        assert c.loss() == 0
