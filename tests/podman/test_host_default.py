"""A host-wide default: containers.conf `annotations = ["io.multihome.mode=..."]`.

Every container of the host then passes through the hook: the ones with two
uplinks are fixed, every other one starts exactly as it would without it.
"""

from __future__ import annotations

import sys

import pytest

from multihome_hook.modes import FIXES
from testlab import commands
from testlab.rootlab import Lab

MODE = "io.multihome.mode"
DROP_IN = commands.REPO / "packaging" / "examples" / "50-oci-multihome-hook.conf"


@pytest.fixture(scope="module", params=[m.name for m in FIXES])
def default_mode(request: pytest.FixtureRequest) -> str:
    mode: str = request.param
    return mode


@pytest.fixture(scope="module")
def host(default_mode: str, podman: Lab) -> Lab:
    """The lab's podman with the hook switched on for every container."""
    return podman.using(annotations=[f"{MODE}={default_mode}"])


def test_two_networks_are_fixed(host: Lab, default_mode: str, nets: list[str]) -> None:
    with host.container(nets[:2]) as c:
        annotation = "{{index .Config.Annotations \"" + MODE + "\"}}"
        assert host.podman("inspect", "-f", annotation, c.name).stdout.strip() == default_mode
        assert c.loss() == 0
        if default_mode == "loose":
            assert c.sysctl("ipv4/conf/all/rp_filter") == 2
        else:
            assert len(c.default_routes()) == 1
            assert c.sysctl("ipv4/conf/all/rp_filter") == 1


def test_the_shipped_drop_in_sets_source_routing() -> None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pytest's own dependency there
        import tomli as tomllib
    with DROP_IN.open("rb") as f:
        assert tomllib.load(f) == {"containers": {"annotations": [f"{MODE}=source-routing"]}}


def test_a_container_can_opt_out(podman: Lab, nets: list[str]) -> None:
    """--annotation io.multihome.mode=off wins over the default: the bug is back."""
    host = podman.using(annotations=[f"{MODE}=source-routing"])
    with host.container(nets[:2], {MODE: "off"}) as c:
        assert len(c.default_routes()) == 2
        assert c.sysctl("ipv4/conf/all/rp_filter") == 1
        assert c.loss() > 20


def test_a_container_can_choose_another_mode(host: Lab, nets: list[str]) -> None:
    with host.container(nets[:2], {MODE: "one-default"}) as c:
        assert len(c.default_routes()) == 1
        assert c.sysctl("ipv4/conf/all/rp_filter") == 1


def test_one_network_is_left_as_it_is(host: Lab, nets: list[str]) -> None:
    with host.container(nets[:1]) as c:
        assert len(c.default_routes()) == 1
        for conf in ("all", "default", *c.interfaces()):
            assert c.sysctl(f"ipv4/conf/{conf}/rp_filter") == 1, conf  # strict, not loosened
        assert c.ns("ip", "rule").stdout.count("lookup") == 3  # local, main, default
        assert c.loss(count=8) == 0


@pytest.mark.parametrize("network", ["none", "host"])
def test_no_network_and_host_network_start_untouched(host: Lab,
                                                     network: str) -> None:
    before = host.view()
    proc = host.podman(*host.run_argv([network], {}, extra=["--rm"]), "cat",
                "/proc/sys/net/ipv4/conf/all/rp_filter", check=False)
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    assert proc.stdout.strip() == "1"
    assert host.changes(before) == []


def test_a_misspelt_default_stops_every_container(podman: Lab, nets: list[str]) -> None:
    host = podman.using(annotations=[f"{MODE}=source_routing"])
    for networks in (nets[:2], nets[:1], ["host"]):
        host.refuse([*host.run_argv(networks, {}, extra=["--rm"]), "true"],
                    "unknown io.multihome.mode 'source_routing'")
