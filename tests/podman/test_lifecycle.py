"""After the hook: pods sharing a namespace, networks disconnected and
connected again, a lost primary, a mode switch and user namespaces, with
real podman (and `watch` where it is the one that must react)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from multihome_hook.modes import FIXES
from testlab.labnet import BRIDGE_A, BRIDGE_B
from testlab.rootlab import Container, Lab
from testlab.watch import watching

MODE, PRIMARY = "io.multihome.mode", "io.multihome.primary"
USERNS = ("--uidmap", "0:200000:65536", "--gidmap", "0:200000:65536")


def pod_member(podman: Lab, pod: str, name: str, mode: str) -> None:
    """A container of `pod` (its network the pod's), created, not started."""
    podman.podman(*podman.run_argv([], {MODE: mode}, extra=["--pod", pod, "--name", name],
                                   verb="create"), "sleep", "600")


def rules(c: Container) -> list[str]:
    """The hook's rules, v4 and v6, without the priority column."""
    text = c.ns("ip", "rule").stdout + c.ns("ip", "-6", "rule").stdout
    return sorted(line.split(":", 1)[1].strip() for line in text.splitlines()
                  if "proto 177" in line)


def every_uplink_works(c: Container) -> None:
    for dev in c.interfaces():
        assert c.loss(None, 8, dev) == 0, dev


@pytest.fixture
def pod(podman: Lab, nets: list[str]) -> Iterator[str]:
    name = f"mhpod{os.getpid()}"
    # --share-parent=false: no pod cgroup, which podman 4.3 cannot make in a
    # root lab's cgroup2 without controllers (the pod's network is the
    # point). Its infra container (no annotation: no hook) under runc, which
    # runs with a cgroup: crun 1.8 needs --cgroups disabled, which `pod
    # create` cannot pass on to it.
    podman.podman("--runtime", "runc", "pod", "create", "--share-parent=false", "--name", name,
                  "--network", nets[0], "--network", nets[1])
    try:
        yield name
    finally:
        podman.podman("pod", "rm", "-f", "-t", "0", name, check=False)


def test_pod_containers_started_at_once_share_one_converged_namespace(
        podman: Lab, hooks: Path, pod: str) -> None:
    """Four containers of one pod, started in parallel, as systemd units do at
    boot: every hook succeeds, and the namespace is what one run makes."""
    names = [f"{pod}c{i}" for i in range(4)]
    for name in names:
        pod_member(podman, pod, name, "source-routing")
    starts = [subprocess.Popen(podman.command("podman", "--hooks-dir", str(hooks), "start", name),
                               env=podman.env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for name in names]
    results = [(p.wait(timeout=120), p.communicate()[1]) for p in starts]
    assert all(code == 0 for code, _ in results), results
    cid, pid = podman.podman("inspect", "-f", "{{.Id}} {{.State.Pid}}", names[0]).stdout.split()
    c = Container(podman, names[0], cid, int(pid), podman.runtime)
    assert len(c.default_routes(4)) == 1
    # from + oif for each of the two uplinks (IPv4 only: these networks have no IPv6)
    assert len(rules(c)) == 4, rules(c)
    every_uplink_works(c)


def test_disconnect_and_connect_again_with_watch(podman: Lab, nets: list[str]) -> None:
    with podman.container(nets[:2], {MODE: "source-routing"}) as c, \
            watching(podman) as watch:
        first = rules(c)
        podman.podman("network", "disconnect", nets[1], c.name)
        watch.expect(f"network {nets[1]} disconnected, mode source-routing")
        assert rules(c) == []  # one uplink left: nothing of the hook's is needed
        podman.podman("network", "connect", nets[1], c.name)
        watch.expect(f"network {nets[1]} connected, mode source-routing")
        assert len(rules(c)) == len(first) == 4
        assert len(c.default_routes()) == 1
        every_uplink_works(c)


def test_disconnect_and_connect_again_then_apply(podman: Lab, nets: list[str]) -> None:
    with podman.container(nets[:2], {MODE: "source-routing"}) as c:
        podman.podman("network", "disconnect", nets[1], c.name)
        podman.podman("network", "connect", nets[1], c.name)
        # Nobody fixed it yet: the new interface's address has no rule. (How
        # many defaults main holds depends on which network podman named
        # eth0, the one source routing kept.)
        dev = c.interface_in(BRIDGE_B.prefix)
        (address,) = [a for a in c.interfaces()[dev] if a.startswith(BRIDGE_B.prefix)]
        assert not [r for r in rules(c) if f"from {address} " in r], rules(c)
        applied = podman.cli("apply", "--mode", "source-routing", c.name)
        assert applied.returncode == 0, applied.stderr
        assert len(rules(c)) == 4 and len(c.default_routes()) == 1
        assert [r for r in rules(c) if f"from {address} " in r], rules(c)
        every_uplink_works(c)
        again = podman.cli("apply", "--mode", "source-routing", c.name)
        assert "nothing to change" in again.stdout, again.stdout


@pytest.mark.parametrize("mode", [m.name for m in FIXES if m.routes])
def test_losing_the_primary_network_keeps_a_default_route(podman: Lab, nets: list[str],
                                                          mode: str) -> None:
    with podman.container(nets[:2], {MODE: mode, PRIMARY: BRIDGE_A.subnet}) as c, \
            watching(podman) as watch:
        (route,) = c.default_routes()
        assert route["gateway"] == BRIDGE_A.gateway
        podman.podman("network", "disconnect", nets[0], c.name)
        watch.expect(f"network {nets[0]} disconnected, mode {mode}")
        (route,) = c.default_routes()
        assert route["gateway"] == BRIDGE_B.gateway
        assert c.loss(count=8) == 0


def test_a_mode_switch_by_apply(podman: Lab, nets: list[str]) -> None:
    with podman.container(nets[:2], {MODE: "one-default"}) as c:
        other = [dev for dev in c.interfaces() if dev != c.default_routes()[0]["dev"]]
        assert [c.loss(None, 8, dev) for dev in other] == [100]
        switched = podman.cli("apply", "--mode", "source-routing", c.name)
        assert switched.returncode == 0, switched.stderr
        assert len(rules(c)) == 4
        every_uplink_works(c)


def test_a_pod_container_of_another_mode_is_refused(podman: Lab, hooks: Path,
                                                    pod: str) -> None:
    first, second = f"{pod}a", f"{pod}b"
    for name, mode in ((first, "source-routing"), (second, "one-default")):
        pod_member(podman, pod, name, mode)
    podman.podman("--hooks-dir", str(hooks), "start", first)
    podman.refuse(["--hooks-dir", str(hooks), "start", second],
                  "already holds this hook's routing of another mode")


def test_loose_in_a_user_namespace(podman: Lab, nets: list[str]) -> None:
    """--uidmap: podman connects the networks after the hook, which finds only
    lo; loose sets all and default, and the interfaces copy default."""
    with podman.container(nets[:2], {MODE: "loose"}, extra=USERNS,
                          rootfs=podman.rootfs_owned_by(200000)) as c:
        assert c.sysctl("ipv4/conf/all/rp_filter") == 2
        for dev in c.interfaces():
            assert c.sysctl(f"ipv4/conf/{dev}/rp_filter") == 2
        assert c.loss() == 0


def test_source_routing_in_a_user_namespace_by_watch(podman: Lab, nets: list[str]) -> None:
    with watching(podman) as watch, \
            podman.container(nets[:2], {MODE: "source-routing"}, extra=USERNS,
                             rootfs=podman.rootfs_owned_by(200000)) as c:
        watch.expect("started, mode source-routing")
        assert len(rules(c)) == 4
        every_uplink_works(c)
