"""Live demonstration: the bug with real podman, then each mode fixing it.

First a container on two bridges. With podman 4 (netavark < 1.11) it loses
packets: that is the bug, and each mode fixes it there. netavark >= 1.11
(podman 5) sets rp_filter 2 (loose) on the container side of every bridge it
manages: two bridges lose nothing, and the demo says so, then shows the
case that still loses packets there: a bridge and a macvlan network (whose
parent is a veth on the host, the gateway at its other end), before and
after each mode. netavark 2.0 (podman 6) gives the macvlan's default route
metric 99, ahead of the bridge's 100: nothing is lost outbound any more,
but replies from the bridge's address leave by the macvlan, so a port
published on the bridge (`-p`) never answers. The demo shows that case
there: connections from the far host through the published port, before
and after each mode (only source-routing fixes it).

Run as root with `make demo`: in a root lab (testlab/rootlab.py), whose
networks and far host (testlab/labnet.py) it uses; the lab and all it
holds are gone at the end.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager

from multihome_hook.modes import FIXES

from . import labnet, rootlab, shapes
from .rootlab import Container, Lab

MODES = tuple(m.name for m in FIXES)
MODE = "io.multihome.mode"
# A trial: its title, % lost (pings unbound, or connections through the
# published port), loss bound to each uplink.
Trial = tuple[str, float, str]


def show(c: Container) -> None:
    for route in c.default_routes():
        print(f"    default via {route['gateway']} dev {route['dev']} metric {route.get('metric')}")
    conf = ("all", *c.interfaces())
    print("    rp_filter: " + ", ".join(f"{k}={c.sysctl(f'ipv4/conf/{k}/rp_filter')}"
                                         for k in conf))
    rules = [line for line in c.ns("ip", "rule").stdout.splitlines() if "lookup 2" in line]
    for line in rules:
        print(f"    rule {line}")


def bound(c: Container) -> str:
    """Loss of pings bound to each device: does every uplink work?"""
    return ", ".join(f"-I {dev}: {c.loss(None, 8, dev):.0f}%"
                     for dev in sorted(c.interfaces()))


def trial(c: Container, title: str, argv: str) -> Trial:
    print(f"== {argv} ({title})")
    show(c)
    loss = c.loss()
    print(f"    ping {c.far_host} x40: {loss:.0f}% loss")
    per_device = bound(c)
    print(f"    ping bound to one uplink, x8 each: {per_device} loss\n")
    return title, loss, per_device


def netavark_loosens(c: Container) -> bool:
    """rp_filter 2 on every bridge interface of a namespace whose `default`
    (what a new interface copies) is not 2: netavark's own (>= 1.11)."""
    values = {k: c.sysctl(f"ipv4/conf/{k}/rp_filter") for k in ("default", *c.interfaces())}
    return values.pop("default") != 2 and set(values.values()) == {2}


def main() -> int:
    print("Host (a lab's namespace): rp_filter all/default = 1 (strict, the RHEL default).")
    lab = rootlab.here()
    podman = lab.using(runtime="runc", hooks=lab.hooks_dir())
    nets = [labnet.BRIDGE_A.name, labnet.BRIDGE_B.name]
    print(f"Networks {labnet.BRIDGE_A.subnet}, {labnet.BRIDGE_B.subnet}; "
          f"far host {labnet.FAR_HOST} behind the host.\n")
    argv = f"podman run --network {nets[0]} --network {nets[1]}"
    with podman.container(nets) as c:
        two = trial(c, "no annotation", argv)
        loosened = netavark_loosens(c)
    if loosened:
        return beside_a_macvlan(podman, nets, two)
    results = [(f"{two[0]} (the bug)", *two[1:])]
    for mode in MODES:
        with podman.container(nets, {MODE: mode}) as c:
            results.append(trial(c, f"{MODE}={mode}", argv))
    return verdict(results, host_wide_default(podman, nets, nets[:1]))


def beside_a_macvlan(podman: Lab, nets: list[str], two: Trial) -> int:
    """netavark loosened the bridges: bridge + macvlan, before and after."""
    print("netavark (>= 1.11: podman 5 and later) set rp_filter=2 on the container's\n"
          "bridge interfaces itself: two bridges lose nothing, but anti-spoofing is off on\n"
          "them, for every container. A macvlan (or ipvlan) interface keeps rp_filter=1: a\n"
          "container on a bridge and a macvlan network is the case that loses packets.\n")
    macvlan = labnet.MACVLAN
    print(f"Network {macvlan.name}: macvlan on {macvlan.subnet}, gateway "
          f"{macvlan.gateway} one hop from the far host.\n")
    # Pinned names: eth0 the bridge, eth1 the macvlan.
    shape = [f"{nets[0]}:interface_name=eth0", f"{macvlan.name}:interface_name=eth1"]
    with podman.container(shape) as c:
        # `ip -j` leaves out a metric of 0
        metrics = {str(r["dev"]): int(str(r.get("metric", 0))) for r in c.default_routes()}
    if metrics["eth1"] < metrics["eth0"]:
        return published_port(podman, shape, nets[:1], two, metrics)
    argv = f"podman run --network {shape[0]} --network {shape[1]}"
    results = [("two bridges, no annotation (podman's own)", *two[1:]),
               *each_mode("bridge + macvlan", functools.partial(podman.container, shape),
                          lambda c, title: trial(c, title, argv), failing=True)]
    host_wide_ok = host_wide_default(podman, shape, nets[:1])
    print("bridges alone lose nothing on podman 5: " + ("yes" if two[1] == 0 else "NO"))
    return verdict(results[1:], host_wide_ok and two[1] == 0, results[:1])


def published_port(podman: Lab, shape: list[str], one: list[str], two: Trial,
                   metrics: dict[str, int]) -> int:
    """netavark 2.0 puts the macvlan first: a port published on the bridge,
    before and after each mode."""
    far_end, port = labnet.LAB_ADDRESS, labnet.PUBLISHED_PORT
    print(f"netavark gave the macvlan's default route metric {metrics['eth1']}, the bridge's "
          f"{metrics['eth0']} (netavark >= 2.0,\npodman 6): everything leaves by the macvlan. "
          "Replies from the bridge's address go that way\ntoo, with that source address: the "
          "far side drops them, and a port published on the\nbridge (podman run -p) never "
          f"answers. The far host connects to {far_end}:{port}, published to the\n"
          f"container's port {shapes.TCP_PORT}.\n")
    argv = f"podman run -p {port}:{shapes.TCP_PORT} --network {shape[0]} --network {shape[1]}"

    def through_the_port(c: Container, title: str) -> Trial:
        print(f"== {argv} ({title})")
        show(c)
        shapes.listen(c)
        failed = shapes.inbound_tcp(c, far_end, port)
        print(f"    far host -> {far_end}:{port}, x{shapes.TCP_ATTEMPTS}: {failed:.0f}% failed")
        per_device = bound(c)
        print(f"    ping bound to one uplink, x8 each: {per_device} loss\n")
        return title, failed, per_device

    results = [("two bridges, no annotation (podman's own)", *two[1:]),
               *each_mode("published port + macvlan",
                          functools.partial(podman.container, shape,
                                            extra=["-p", f"{port}:{shapes.TCP_PORT}"]),
                          through_the_port, failing=False)]
    host_wide_ok = host_wide_default(podman, shape, one)
    return verdict(results[1:], host_wide_ok and two[1] == 0, results[:1],
                   fixed_by=("source-routing",))


def each_mode(label: str, start: Callable[[dict[str, str]], AbstractContextManager[Container]],
              measure: Callable[[Container, str], Trial], failing: bool) -> list[Trial]:
    """`measure` of a container made by `start(annotations)` without the hook,
    then with each mode; without the hook in the failing order of its
    default routes when `failing` (with it, no order may lose any)."""
    results = []
    for mode in (None, *MODES):
        annotations = {} if mode is None else {MODE: mode}
        title = f"{label}, " + ("no annotation (the bug)" if mode is None else f"{MODE}={mode}")
        begin = functools.partial(start, annotations)
        with (shapes.failing_order(begin) if failing and mode is None else begin()) as c:
            results.append(measure(c, title))
    return results


def verdict(results: list[Trial], host_wide_ok: bool, also: list[Trial] | None = None,
            fixed_by: tuple[str, ...] = MODES) -> int:
    """The summary: results[0] shows the bug, each mode of `fixed_by` has no loss."""
    print("Summary (% of 40 pings lost, or of connections through the published port failed;"
          "\nneighbours aged fast so the kernel keeps re-deciding):")
    print(f"  {'':<56} {'lost':>9}   bound to each uplink (x8)")
    for title, loss, per_device in (also or []) + results:
        print(f"  {title:<56} {loss:5.1f}% loss   {per_device}")
    bug_shown = results[0][1] > 0
    fixes = [loss == 0 for title, loss, _ in results[1:] if title.endswith(fixed_by)]
    fixed = len(fixes) == len(fixed_by) and all(fixes)
    which = "every mode" if fixed_by == MODES else " and ".join(fixed_by)
    print("\nbug reproduced: " + ("yes" if bug_shown else "NO") +
          f"; fixed by {which}: " + ("yes" if fixed else "NO") +
          "; host-wide default safe for every container: " + ("yes" if host_wide_ok else "NO"))
    return 0 if bug_shown and fixed and host_wide_ok else 1


def host_wide_default(podman: Lab, nets: list[str], one: list[str]) -> bool:
    """The hook switched on for every container of the host, as an admin
    would in containers.conf: only the multi-homed container changes."""
    default = "io.multihome.mode=source-routing"
    print(f'== host-wide default: containers.conf [containers] annotations = ["{default}"]')
    host = podman.using(annotations=[default])
    with host.container(nets) as c:
        annotation = host.podman("inspect", "-f",
                                 '{{index .Config.Annotations "io.multihome.mode"}}',
                                 c.name).stdout.strip()
        print(f"  two networks, no --annotation (podman inspect: mode {annotation}):")
        show(c)
        two = c.loss()
        print(f"    ping {c.far_host} x40: {two:.0f}% loss")
    with host.container(one) as c:
        print("  one network: left as it is (no rules)")
        show(c)
        single = c.loss(count=8)
        print(f"    ping {c.far_host} x8: {single:.0f}% loss")
    before = host.view()
    proc = host.podman(*host.run_argv(["host"], extra=["--rm"]), "true", check=False)
    untouched = not host.changes(before)
    print(f"  --network host: exit {proc.returncode}, host rp_filter and rules "
          f"{'untouched' if untouched else 'CHANGED'}\n")
    return two == 0 and single == 0 and proc.returncode == 0 and untouched


if __name__ == "__main__":
    sys.exit(main())
