"""Live demonstration: the bug with real podman, then each mode fixing it.

Run as root with `make demo`. Everything it creates (networks, far host,
containers, host rp_filter defaults) is removed or restored at the end.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from . import lab

MODES = ("loose", "one-default", "source-routing")


def show(c: lab.Container) -> None:
    for route in c.default_routes():
        print(f"    default via {route['gateway']} dev {route['dev']} metric {route.get('metric')}")
    conf = ("all", *c.interfaces())
    print("    rp_filter: " + ", ".join(f"{k}={c.sysctl(f'ipv4/conf/{k}/rp_filter')}"
                                         for k in conf))
    rules = [line for line in c.ns("ip", "rule").stdout.splitlines() if "lookup 2" in line]
    for line in rules:
        print(f"    rule {line}")


def bound(c: lab.Container) -> str:
    """Loss of pings bound to each device: does every uplink work?"""
    return ", ".join(f"-I {dev}: {c.loss(None, 8, dev):.0f}%"
                     for dev in sorted(c.interfaces()))


def main() -> int:
    results: list[tuple[str, float, str]] = []
    print("Host: rp_filter all/default = 1 (strict, the RHEL default), for this demo only.")
    with lab.podman_env() as podman, \
            lab.networks(podman, [podman.slot.subnet(0), podman.slot.subnet(1)]) as nets:
        hooks = podman.hooks_dir()
        far = podman.slot.far_host
        print(f"Networks {podman.slot.subnet(0)}, {podman.slot.subnet(1)}; "
              f"far host {far} behind the host.\n")
        for mode in (None, *MODES):
            annotations = {} if mode is None else {"io.multihome.mode": mode}
            title = "no annotation (the bug)" if mode is None else f"io.multihome.mode={mode}"
            start = time.monotonic()
            with podman.container(nets, annotations, hooks) as c:
                started = time.monotonic() - start
                print(f"== podman run --network {nets[0]} --network {nets[1]} "
                      f"({title}), started in {started:.2f} s")
                show(c)
                loss = c.loss()
                print(f"    ping {far} x40: {loss:.0f}% loss")
                per_device = bound(c)
                print(f"    ping bound to one uplink, x8 each: {per_device} loss\n")
                results.append((title, loss, per_device))
        host_wide_ok = host_wide_default(podman, nets, hooks)
    print("Summary (40 pings each, neighbours aged fast so the kernel keeps re-deciding):")
    print(f"  {'':<36} {'ping x40':>9}   bound to each uplink (x8)")
    for title, loss, per_device in results:
        print(f"  {title:<36} {loss:5.1f}% loss   {per_device}")
    bug_shown = results[0][1] > 0
    fixed = all(loss == 0 for _, loss, _ in results[1:])
    print("\nbug reproduced: " + ("yes" if bug_shown else "NO") +
          "; fixed by every mode: " + ("yes" if fixed else "NO") +
          "; host-wide default safe for every container: " + ("yes" if host_wide_ok else "NO"))
    return 0 if bug_shown and fixed and host_wide_ok else 1


def host_wide_default(podman: lab.Podman, nets: list[str], hooks: Path) -> bool:
    """The hook switched on for every container of the host, as an admin
    would in containers.conf: only the multi-homed container changes."""
    default = "io.multihome.mode=source-routing"
    print(f'== host-wide default: containers.conf [containers] annotations = ["{default}"]')
    host = podman.with_default_annotations(default)
    with host.container(nets, hooks=hooks) as c:
        annotation = host("inspect", "-f", '{{index .Config.Annotations "io.multihome.mode"}}',
                          c.name).stdout.strip()
        print(f"  two networks, no --annotation (podman inspect: mode {annotation}):")
        show(c)
        two = c.loss()
        print(f"    ping {host.slot.far_host} x40: {two:.0f}% loss")
    with host.container(nets[:1], hooks=hooks) as c:
        print("  one network: left as it is (rp_filter stays strict, no rules)")
        show(c)
        one = c.loss(count=8)
        print(f"    ping {host.slot.far_host} x8: {one:.0f}% loss")
    before = lab.run("sh", "-c", "grep -r . /proc/sys/net/ipv4/conf/*/rp_filter; ip rule").stdout
    proc = host(*host.run_argv(["host"], {}, hooks, ["--rm"]), "true", check=False)
    untouched = lab.run("sh", "-c",
                        "grep -r . /proc/sys/net/ipv4/conf/*/rp_filter; ip rule").stdout == before
    print(f"  --network host: exit {proc.returncode}, host rp_filter and rules "
          f"{'untouched' if untouched else 'CHANGED'}\n")
    return two == 0 and one == 0 and proc.returncode == 0 and untouched


if __name__ == "__main__":
    sys.exit(main())
