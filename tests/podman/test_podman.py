"""The hook for real: `podman --hooks-dir` with the project's own JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from multihome_hook.errors import INVALID_ANNOTATION, UNUSABLE_PRIMARY
from testlab.labnet import BRIDGE_A, BRIDGE_B, BRIDGE_C, DUAL_A, DUAL_B, FAR_HOST, FAR_HOST6
from testlab.rootlab import Container, Lab

MODE, PRIMARY = "io.multihome.mode", "io.multihome.primary"
NETS = (BRIDGE_A, BRIDGE_B, BRIDGE_C)  # the `nets` fixture's


def test_without_annotation_the_bug_shows(podman: Lab, nets: list[str]) -> None:
    """The hooks dir is there, but without the annotation the hook never runs."""
    with podman.container(nets[:2]) as c:
        assert len(c.default_routes()) == 2  # the hook did not run
        assert c.sysctl("ipv4/conf/all/rp_filter") == 1
        assert c.loss() > 20


def test_loose_fixes_the_loss(podman: Lab, nets: list[str]) -> None:
    with podman.container(nets[:2], {MODE: "loose"}) as c:
        for conf in ("all", "default", *c.interfaces()):
            assert c.sysctl(f"ipv4/conf/{conf}/rp_filter") == 2, conf
        assert len(c.default_routes()) == 2
        assert c.loss() == 0


def test_one_default_fixes_the_loss(podman: Lab, nets: list[str]) -> None:
    with podman.container(nets[:2], {MODE: "one-default"}) as c:
        (route,) = c.default_routes()
        # No primary given: equal metrics, so the name that sorts first wins.
        assert route["dev"] == "eth0"
        assert c.sysctl("ipv4/conf/all/rp_filter") == 1  # strict stays on
        assert c.loss() == 0


@pytest.mark.parametrize(("kind", "network"), [("subnet", 1), ("gateway", 2), ("subnet", 0)])
def test_primary_selects_the_network(podman: Lab, nets: list[str],
                                     kind: str, network: int) -> None:
    net = NETS[network]
    primary = net.subnet if kind == "subnet" else net.gateway
    with podman.container(nets, {MODE: "one-default", PRIMARY: primary}) as c:
        (route,) = c.default_routes()
        assert route["gateway"] == net.gateway
        assert route["dev"] == c.interface_in(net.prefix)


def test_primary_by_interface_name(podman: Lab, nets: list[str]) -> None:
    with podman.container(nets, {MODE: "one-default", PRIMARY: "eth2"}) as c:
        assert [r["dev"] for r in c.default_routes()] == ["eth2"]


@pytest.mark.parametrize(("annotations", "code", "message"), [
    ({MODE: "LOOSE"}, INVALID_ANNOTATION, "unknown io.multihome.mode 'LOOSE'"),
    ({MODE: "loose; reboot"}, INVALID_ANNOTATION, "unknown io.multihome.mode 'loose; reboot'"),
    ({MODE: ""}, INVALID_ANNOTATION, "unknown io.multihome.mode ''"),
    ({MODE: "one-default", PRIMARY: "../../all"}, INVALID_ANNOTATION,
     "invalid io.multihome.primary '../../all'"),
    ({MODE: "one-default", PRIMARY: "198.18.99.0/24"}, UNUSABLE_PRIMARY,
     "primary subnet 198.18.99.0/24 matches no interface"),
    ({MODE: "one-default", PRIMARY: "eth7"}, UNUSABLE_PRIMARY,
     "primary 'eth7' matches no interface or network of the container (eth0 ("),
])
def test_bad_annotations_stop_the_container(podman: Lab, nets: list[str],
                                            annotations: dict[str, str], code: int,
                                            message: str) -> None:
    podman.refuse([*podman.run_argv(nets[:2], annotations, extra=["--rm"]), "true"], message,
                  code)


def test_host_network_starts_and_the_host_is_untouched(podman: Lab) -> None:
    before = podman.view()  # all and default included
    argv = podman.run_argv(["host"], {MODE: "loose"}, extra=["--rm"])
    proc = podman.podman(*argv, "true", check=False)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert podman.changes(before) == []


def test_podman_does_not_even_start_the_hook_for_off(podman: Lab,
                                                     nets: list[str]) -> None:
    """The JSON's `when` leaves `off` out: an opt-out costs nothing. The
    same JSON, with a hook that always fails, shows that it would run."""
    failing = podman.using(hooks=podman.hooks_dir(path=Path("/bin/false")))
    started = failing.podman(*failing.run_argv(nets[:2], {MODE: "off"}, extra=["--rm"]), "true",
                             check=False)
    assert started.returncode == 0, started.stderr
    for value in ("loose", "OFF", "off ", ""):
        refused = failing.podman(*failing.run_argv(nets[:2], {MODE: value}, extra=["--rm"]),
                                 "true", check=False)
        assert refused.returncode != 0, value


def test_mode_off_changes_nothing(podman: Lab, nets: list[str]) -> None:
    with podman.container(nets[:2], {MODE: "off"}) as c:
        assert len(c.default_routes()) == 2
        assert c.sysctl("ipv4/conf/all/rp_filter") == 1


def bound_losses(c: Container, count: int = 8) -> dict[str, float]:
    """Loss per binding (each device and each of its addresses, v4 and v6),
    after checking that the pings left through that binding's own device."""
    losses = {}
    for dev, addresses in c.interfaces().items():
        for bind, target in ((dev, FAR_HOST), (dev, FAR_HOST6),
                             *((a, FAR_HOST6 if ":" in a else FAR_HOST) for a in addresses)):
            sent = c.tx_packets(dev)
            losses[f"{bind}->{target}"] = loss = c.loss(target, count, bind)
            if loss == 0:
                assert c.tx_packets(dev) - sent >= count, f"{bind} did not leave via {dev}"
    return losses


def test_without_hook_pings_bound_to_one_uplink_are_dropped(
        podman: Lab, dual_nets: list[str]) -> None:
    with podman.container(dual_nets, {}) as c:
        v4_devices = [c.loss(None, 8, dev) for dev in c.interfaces()]
        assert max(v4_devices) == 100, v4_devices


def test_one_default_cannot_use_the_second_uplink(podman: Lab, dual_nets: list[str]) -> None:
    with podman.container(dual_nets, {MODE: "one-default", PRIMARY: DUAL_A.subnet}) as c:
        other = c.interface_in(DUAL_B.prefix)
        (v6,) = c.default_routes(6)
        assert "nexthops" not in v6 and v6["gateway"] == DUAL_A.gateway6
        assert c.loss(None, 8, other) == 100
        assert c.loss(FAR_HOST6, 8, other) == 100


def test_source_routing_keeps_every_uplink_working(podman: Lab, dual_nets: list[str]) -> None:
    with podman.container(dual_nets, {MODE: "source-routing"}) as c:
        assert c.sysctl("ipv4/conf/all/rp_filter") == 1  # strict stays on
        assert len(c.default_routes(4)) == 1 and len(c.default_routes(6)) == 1
        rules = c.ns("ip", "rule").stdout + c.ns("ip", "-6", "rule").stdout
        for dev, addresses in c.interfaces().items():
            assert f"oif {dev} lookup" in rules
            for address in addresses:
                assert f"from {address} lookup" in rules
        losses = bound_losses(c)
        assert len(losses) == 8 and set(losses.values()) == {0}, losses
        assert c.loss() == 0
        assert c.loss(FAR_HOST6, 8) == 0


def test_source_routing_with_three_networks_and_a_primary(
        podman: Lab, nets: list[str]) -> None:
    gateway = BRIDGE_C.gateway
    with podman.container(nets, {MODE: "source-routing", PRIMARY: gateway}) as c:
        (route,) = c.default_routes()
        assert route["gateway"] == gateway
        tables = {line.split("lookup ")[1] for line in c.ns("ip", "rule").stdout.splitlines()
                  if "lookup 2" in line}
        assert len(tables) == 3
        for dev in c.interfaces():
            assert c.loss(None, 8, dev) == 0, dev
