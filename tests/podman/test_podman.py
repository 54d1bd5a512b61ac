"""The hook for real: `podman --hooks-dir` with the project's own JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from testlab import lab

MODE, PRIMARY = "io.multihome.mode", "io.multihome.primary"


def test_without_annotation_the_bug_shows(podman: lab.Podman, nets: list[str],
                                          hooks: Path) -> None:
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


@pytest.mark.parametrize(("primary", "network"), [
    ("198.18.11.0/24", 1),  # subnet
    ("198.18.12.1", 2),     # gateway
    ("198.18.10.0/24", 0),
])
def test_primary_selects_the_network(podman: lab.Podman, nets: list[str], hooks: Path,
                                     primary: str, network: int) -> None:
    with podman.container(nets, {MODE: "one-default", PRIMARY: primary}, hooks) as c:
        (route,) = c.default_routes()
        assert route["gateway"] == f"198.18.1{network}.1"
        assert route["dev"] == c.interface_in(f"198.18.1{network}.")


def test_primary_by_interface_name(podman: lab.Podman, nets: list[str], hooks: Path) -> None:
    with podman.container(nets, {MODE: "one-default", PRIMARY: "eth2"}, hooks) as c:
        assert [r["dev"] for r in c.default_routes()] == ["eth2"]


@pytest.mark.parametrize(("annotations", "message"), [
    ({MODE: "LOOSE"}, "unknown io.multihome.mode 'LOOSE'"),
    ({MODE: "loose; reboot"}, "unknown io.multihome.mode 'loose; reboot'"),
    ({MODE: ""}, "unknown io.multihome.mode ''"),
    ({MODE: "one-default", PRIMARY: "../../all"}, "invalid io.multihome.primary '../../all'"),
    ({MODE: "one-default", PRIMARY: "198.18.99.0/24"},
     "primary subnet 198.18.99.0/24 matches no interface"),
    ({MODE: "one-default", PRIMARY: "eth7"}, "primary interface eth7 matches no interface"),
])
def test_bad_annotations_stop_the_container(podman: lab.Podman, nets: list[str], hooks: Path,
                                            annotations: dict[str, str], message: str) -> None:
    argv = podman.run_argv(nets[:2], annotations, hooks, ["--rm"])
    proc = podman(*argv, "true", check=False)
    assert proc.returncode != 0
    assert "oci-multihome-hook: " in proc.stderr and message in proc.stderr, proc.stderr


def test_host_network_is_refused_and_untouched(podman: lab.Podman, hooks: Path) -> None:
    before = lab.run("sh", "-c", "grep -r . /proc/sys/net/ipv4/conf/*/rp_filter").stdout
    argv = podman.run_argv(["host"], {MODE: "loose"}, hooks, ["--rm"])
    proc = podman(*argv, "true", check=False)
    assert proc.returncode != 0
    assert "shares the hook's network namespace (--network host?)" in proc.stderr, proc.stderr
    assert lab.run("sh", "-c", "grep -r . /proc/sys/net/ipv4/conf/*/rp_filter").stdout == before


def test_mode_off_changes_nothing(podman: lab.Podman, nets: list[str], hooks: Path) -> None:
    with podman.container(nets[:2], {MODE: "off"}, hooks) as c:
        assert len(c.default_routes()) == 2
        assert c.sysctl("ipv4/conf/all/rp_filter") == 1
