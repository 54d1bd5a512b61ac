"""`oci-multihome-hook watch` on podman 5 and 6 (their events carry `time`
and `timeNano`, not podman 4's `Time`): the installed deb's CLI, running in
the lab, brings a source-routing container up to date when the macvlan network
is connected to it or disconnected, under crun and runc."""

from __future__ import annotations

import pytest

from testlab.labnet import BRIDGE_A, MACVLAN
from testlab.rootlab import LAB_ENV, Container, Lab
from testlab.watch import watch_running

MODE = "io.multihome.mode"


def source_rules(c: Container) -> list[str]:
    """The `from ADDRESS` rules of the container's policy routing."""
    return [line for line in c.ns("ip", "rule").stdout.splitlines() if "from 198.18." in line]


def watches(lab: Lab) -> list[str]:
    """Pids of `oci-multihome-hook watch` processes in the lab."""
    return lab.run("python3", "-c", """if True:
        import pathlib
        for p in pathlib.Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if b"oci-multihome-hook\\0watch" in p.read_bytes():
                    print(p.parent.name)
            except OSError:
                pass""").stdout.split()


@pytest.mark.parametrize("runtime", ["crun", "runc"])
def test_watch_routes_a_macvlan_connected_to_a_running_container(lab: Lab, runtime: str) -> None:
    bridge = f"{BRIDGE_A.name}:interface_name=eth0"
    with lab.container([bridge], {MODE: "source-routing"}, runtime) as c:
        # Without watch, a connect leaves the new address without its rule
        # (no hook runs for it) and main with a second default route.
        lab.podman("network", "connect", MACVLAN.name, c.name)
        (address,) = c.interfaces()["eth1"]
        assert not [r for r in source_rules(c) if f"from {address} " in r], source_rules(c)
        assert len(c.default_routes()) == 2
        lab.podman("network", "disconnect", MACVLAN.name, c.name)
        with watch_running(lab.command("oci-multihome-hook", "watch"), LAB_ENV) as watch:
            lab.podman("network", "connect", MACVLAN.name, c.name)
            watch.expect(f"{c.id[:12]}: network {MACVLAN.name} connected, mode source-routing")
            (address,) = c.interfaces()["eth1"]
            assert [r for r in source_rules(c) if f"from {address} " in r], source_rules(c)
            # main keeps the default podman prefers: netavark 2.0 gives the
            # macvlan's metric 99, the bridge's 100.
            kept = "eth1" if lab.stack.metric("macvlan") < lab.stack.metric("bridge") else "eth0"
            assert [r["dev"] for r in c.default_routes()] == [kept]
            assert c.rp_filter()["eth1"] == 1  # strict filtering stays on the macvlan
            losses = {bind: c.loss(count=16, bind=bind)
                      for bind in ("eth0", "eth1", *c.interfaces()["eth0"], address)}
            losses["unbound"] = c.loss(count=40)
            assert set(losses.values()) == {0}, losses
            lab.podman("network", "disconnect", MACVLAN.name, c.name)
            watch.expect(f"{c.id[:12]}: network {MACVLAN.name} disconnected, "
                         "mode source-routing")
            assert source_rules(c) == []  # one uplink left: nothing of the hook's is needed
        assert not watches(lab), "stopped, yet running in the lab"
