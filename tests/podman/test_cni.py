"""podman 4.3's CNI backend (RHEL 8's and Ubuntu 22.04's): a container on two
CNI bridges gets two default routes without a metric and, under strict
rp_filter, loses packets to the far host; every mode brings that to 0 %,
under each runtime of the `podman` fixture. Podman 5 has no CNI backend:
there these tests are deselected (tests/conftest.py), and the
report's header says so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from multihome_hook.modes import FIXES
from testlab import lab

MODE, RP_FILTER = "io.multihome.mode", "io.multihome.rp_filter"
MODES = {
    **{m.name: {MODE: m.name} for m in FIXES},
    **{f"{m.name}+strict": {MODE: m.name, RP_FILTER: "strict"} for m in FIXES if m.takes_strict},
}


@pytest.fixture(scope="module")
def cni_nets(podman_lab: lab.Podman) -> Iterator[list[str]]:
    """Two CNI bridges on the slot's networks 5 and 6, which no netavark
    network of the lab holds on the host (test_rootless's live in the
    rootless user's namespace)."""
    slot = podman_lab.slot
    with lab.networks(podman_lab.variant(backend="cni"), [slot.subnet(5), slot.subnet(6)],
                      prefix="mhcni") as names:
        yield names


def inside(c: lab.Container, *argv: str) -> str:
    """A command run in the container (podman exec, through its runtime)."""
    return c.podman("exec", c.name, *argv).stdout


def rp_filter(c: lab.Container) -> dict[str, int]:
    """rp_filter of all, default and each interface, as the container reads them."""
    confs = ("all", "default", *c.interfaces())
    values = inside(c, "cat", *(f"/proc/sys/net/ipv4/conf/{conf}/rp_filter" for conf in confs))
    return dict(zip(confs, map(int, values.split())))


def test_without_annotation_cni_loses_packets(podman: lab.Podman, cni_nets: list[str],
                                              hooks: Path) -> None:
    cni = podman.variant(backend="cni")
    with cni.container(cni_nets, hooks=hooks) as c:
        assert cni("inspect", "-f", "{{.OCIRuntime}}", c.name).stdout.strip() == podman.runtime
        defaults = c.default_routes()
        assert len(defaults) == 2 and not any("metric" in r for r in defaults), defaults
        assert set(rp_filter(c).values()) == {1}, rp_filter(c)
        assert c.loss() > 20


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_fixes_cni(podman: lab.Podman, cni_nets: list[str], hooks: Path,
                              mode: str) -> None:
    with podman.variant(backend="cni").container(cni_nets, MODES[mode], hooks) as c:
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
