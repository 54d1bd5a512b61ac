"""Namespaces that look like multi-network containers, built with `ip`.

Veth pairs (both ends inside) carry the addresses and default routes podman would set up;
no traffic is needed to check what the hook reads and writes.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

from .commands import run


@dataclass
class Namespace:
    name: str
    pid: int

    def ip(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run("ip", "-n", self.name, *argv, check=check)

    def state(self) -> tuple[str, str, str, str]:
        """Everything the hook may touch, as text, to compare before/after:
        every routing table but what the kernel makes as links come up, in
        an order of their coming (`local`, where link-local addresses arrive
        whenever their duplicate detection ends; main's fe80::/64)."""
        sysctls = run("ip", "netns", "exec", self.name, "sh", "-c",
                      "grep -r . /proc/sys/net/ipv4/conf/*/rp_filter").stdout

        def routes(family: str) -> str:
            table = self.ip(family, "route", "show", "table", "all").stdout
            return "".join(line for line in table.splitlines(keepends=True)
                           if " table local " not in line
                           and not (line.startswith("fe80::/64 ") and " table " not in line))

        return (routes("-4"), routes("-6"),
                self.ip("rule", "show").stdout + self.ip("-6", "rule", "show").stdout,
                sysctls)

    def sysctl(self, key: str, value: int | None = None) -> int:
        path = f"/proc/sys/net/ipv4/conf/{key}/rp_filter"
        if value is not None:
            run("ip", "netns", "exec", self.name, "sh", "-c", f"echo {value} > {path}")
        return int(run("ip", "netns", "exec", self.name, "cat", path).stdout)


def network(i: int) -> tuple[str, str, str]:
    """(interface, IPv4 /24 prefix, IPv6 /64 prefix) of network i, like podman's.

    Apart from the lab's podman networks (testlab/labnet.py, in 198.18.0.0/16):
    diagnose names an interface by the podman network of its subnet.
    198.19.240.0 and up first (the golden files' addresses), then 224 to
    239: 32 at most."""
    assert 0 <= i < 32, "198.19.224.0/19 holds 32 networks"
    return f"eth{i}", f"198.19.{240 + i if i < 16 else 208 + i}", f"fd18:{20 + i}"


def build(name: str, count: int, metric: int = 100) -> Namespace:
    run("ip", "netns", "add", name)
    commands = ["link set lo up"]
    for ifname, v4, v6 in map(network, range(count)):
        commands += [
            f"link add {ifname} type veth peer name peer-{ifname}",
            f"link set peer-{ifname} up",
            f"addr add {v4}.2/24 dev {ifname}",
            f"addr add {v6}::2/64 dev {ifname} nodad",
            f"link set {ifname} up",
            f"route append default via {v4}.1 dev {ifname} metric {metric}",
            # Appended IPv6 defaults of equal metric become ONE multipath route.
            f"route append default via inet6 {v6}::1 dev {ifname} metric {metric}",
        ]
    # One `ip` for all of it: the benchmark builds a namespace for every run.
    subprocess.run(["ip", "-n", name, "-batch", "-"], input="\n".join(commands) + "\n",
                   text=True, check=True, capture_output=True, timeout=60)
    return Namespace(name, 0)


@contextlib.contextmanager
def fake_container(name: str, count: int) -> Iterator[Namespace]:
    """A namespace with `count` networks and a process living in it."""
    sleeper = None
    try:
        ns = build(name, count)
        sleeper = subprocess.Popen(["ip", "netns", "exec", name, "sleep", "600"])
        ns.pid = sleeper.pid
        # `ip netns exec` enters the namespace, then execs: wait for the exec.
        deadline = time.monotonic() + 5
        while run("cat", f"/proc/{ns.pid}/comm").stdout.strip() != "sleep":
            assert time.monotonic() < deadline, "sleeper never started"
            time.sleep(0.01)
        yield ns
    finally:
        if sleeper:
            sleeper.kill()
            sleeper.wait()
        run("ip", "netns", "del", name, check=False)


@contextlib.contextmanager
def user_namespace_process(ns: Namespace) -> Iterator[int]:
    """The pid of a process in `ns` with a user namespace of its own, as a
    container's with --uidmap (podman connects its networks after the hook)."""
    with subprocess.Popen(["ip", "netns", "exec", ns.name, "unshare", "--user",
                           "--map-root-user", "sleep", "60"]) as process:
        try:
            deadline = time.monotonic() + 5
            while os.readlink(f"/proc/{process.pid}/ns/user") == os.readlink("/proc/self/ns/user"):
                assert time.monotonic() < deadline, "never entered its user namespace"
                time.sleep(0.01)
            yield process.pid
        finally:
            process.kill()
