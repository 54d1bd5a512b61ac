"""The hook for real: `podman --hooks-dir` with the project's own JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from multihome_hook.errors import INVALID_ANNOTATION, UNUSABLE_PRIMARY
from testlab import commands, lab, network

MODE, PRIMARY = "io.multihome.mode", "io.multihome.primary"


def test_without_annotation_the_bug_shows(podman: lab.Podman, nets: list[str],
                                          hooks: Path) -> None:
    """The hooks dir is there, but without the annotation the hook never runs."""
    with podman.container(nets[:2], hooks=hooks) as c:
        assert len(c.default_routes()) == 2  # the hook did not run
        assert c.sysctl("ipv4/conf/all/rp_filter") == 1
        assert c.loss() > 20


def test_loose_fixes_the_loss(podman: lab.Podman, nets: list[str], hooks: Path) -> None:
    with podman.container(nets[:2], {MODE: "loose"}, hooks) as c:
        for conf in ("all", "default", *c.interfaces()):
            assert c.sysctl(f"ipv4/conf/{conf}/rp_filter") == 2, conf
        assert len(c.default_routes()) == 2
        assert c.loss() == 0


def test_one_default_fixes_the_loss(podman: lab.Podman, nets: list[str], hooks: Path) -> None:
    with podman.container(nets[:2], {MODE: "one-default"}, hooks) as c:
        (route,) = c.default_routes()
        # No primary given: equal metrics, so the name that sorts first wins.
        assert route["dev"] == "eth0"
        assert c.sysctl("ipv4/conf/all/rp_filter") == 1  # strict stays on
        assert c.loss() == 0


@pytest.mark.parametrize(("kind", "network"), [("subnet", 1), ("gateway", 2), ("subnet", 0)])
def test_primary_selects_the_network(podman: lab.Podman, nets: list[str], hooks: Path,
                                     kind: str, network: int) -> None:
    slot = podman.slot
    primary = slot.subnet(network) if kind == "subnet" else slot.gateway(network)
    with podman.container(nets, {MODE: "one-default", PRIMARY: primary}, hooks) as c:
        (route,) = c.default_routes()
        assert route["gateway"] == slot.gateway(network)
        assert route["dev"] == c.interface_in(slot.prefix(network))


def test_primary_by_interface_name(podman: lab.Podman, nets: list[str], hooks: Path) -> None:
    with podman.container(nets, {MODE: "one-default", PRIMARY: "eth2"}, hooks) as c:
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
def test_bad_annotations_stop_the_container(podman: lab.Podman, nets: list[str], hooks: Path,
                                            annotations: dict[str, str], code: int,
                                            message: str) -> None:
    podman.refuse([*podman.run_argv(nets[:2], annotations, hooks, ["--rm"]), "true"], message,
                  code)


def test_host_network_starts_and_the_host_is_untouched(podman: lab.Podman, hooks: Path) -> None:
    # all and default as well: no other lab changes them while this one runs.
    def strict() -> str:
        return commands.run("cat", *(f"/proc/sys/net/ipv4/conf/{c}/rp_filter"
                                for c in ("all", "default"))).stdout

    before, defaults = network.host_view(), strict()
    argv = podman.run_argv(["host"], {MODE: "loose"}, hooks, ["--rm"])
    proc = podman(*argv, "true", check=False)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert network.host_changes(before) == []
    assert strict() == defaults


def test_podman_does_not_even_start_the_hook_for_off(podman: lab.Podman,
                                                     nets: list[str]) -> None:
    """The JSON's `when` leaves `off` out: an opt-out costs nothing. The
    same JSON, with a hook that always fails, shows that it would run."""
    failing = podman.hooks_dir(path=Path("/bin/false"))
    started = podman(*podman.run_argv(nets[:2], {MODE: "off"}, failing, ["--rm"]), "true",
                     check=False)
    assert started.returncode == 0, started.stderr
    for value in ("loose", "OFF", "off ", ""):
        refused = podman(*podman.run_argv(nets[:2], {MODE: value}, failing, ["--rm"]), "true",
                         check=False)
        assert refused.returncode != 0, value


def test_mode_off_changes_nothing(podman: lab.Podman, nets: list[str], hooks: Path) -> None:
    with podman.container(nets[:2], {MODE: "off"}, hooks) as c:
        assert len(c.default_routes()) == 2
        assert c.sysctl("ipv4/conf/all/rp_filter") == 1


def bound_losses(c: lab.Container, count: int = 8) -> dict[str, float]:
    """Loss per binding (each device and each of its addresses, v4 and v6),
    after checking that the pings left through that binding's own device."""
    losses = {}
    for dev, addresses in c.interfaces().items():
        slot = c.podman.slot
        for bind, target in ((dev, slot.far_host), (dev, slot.far_host6),
                             *((a, slot.far_host6 if ":" in a else slot.far_host)
                               for a in addresses)):
            sent = c.tx_packets(dev)
            losses[f"{bind}->{target}"] = loss = c.loss(target, count, bind)
            if loss == 0:
                assert c.tx_packets(dev) - sent >= count, f"{bind} did not leave via {dev}"
    return losses


def test_without_hook_pings_bound_to_one_uplink_are_dropped(
        podman: lab.Podman, dual_nets: list[str], hooks: Path) -> None:
    with podman.container(dual_nets, {}, hooks) as c:
        v4_devices = [c.loss(None, 8, dev) for dev in c.interfaces()]
        assert max(v4_devices) == 100, v4_devices


def test_one_default_cannot_use_the_second_uplink(podman: lab.Podman, dual_nets: list[str],
                                                  hooks: Path) -> None:
    slot = podman.slot
    with podman.container(dual_nets, {MODE: "one-default", PRIMARY: slot.subnet(3)},
                          hooks) as c:
        other = c.interface_in(slot.prefix(4))
        (v6,) = c.default_routes(6)
        assert "nexthops" not in v6 and v6["gateway"] == slot.gateway6(3)
        assert c.loss(None, 8, other) == 100
        assert c.loss(slot.far_host6, 8, other) == 100


def test_source_routing_keeps_every_uplink_working(podman: lab.Podman, dual_nets: list[str],
                                                   hooks: Path) -> None:
    with podman.container(dual_nets, {MODE: "source-routing"}, hooks) as c:
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
        assert c.loss(podman.slot.far_host6, 8) == 0


def test_source_routing_with_three_networks_and_a_primary(
        podman: lab.Podman, nets: list[str], hooks: Path) -> None:
    gateway = podman.slot.gateway(2)
    with podman.container(nets, {MODE: "source-routing", PRIMARY: gateway}, hooks) as c:
        (route,) = c.default_routes()
        assert route["gateway"] == gateway
        tables = {line.split("lookup ")[1] for line in c.ns("ip", "rule").stdout.splitlines()
                  if "lookup 2" in line}
        assert len(tables) == 3
        for dev in c.interfaces():
            assert c.loss(None, 8, dev) == 0, dev
