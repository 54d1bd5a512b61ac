"""A lab's network on the machine it runs on: its slot of addresses (other
labs may run beside it), the far host in a namespace of its own, L2
segments for macvlan and ipvlan parents, the sysctls every lab needs set
while any runs, and the view of the machine a hook must leave as it was.

Everything is named after the lab's pid and slot, and removed by the
context managers even when the body fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from .commands import run

_LOCKS = Path("/run/oci-multihome-hook-lab")
SLOTS = 60


class Slot:
    """A lab's own addresses, unique on this host while it holds the slot:
    eight /24 of 198.18.0.0/15 and IPv6 /64s of fd18::/16 (test networks
    0-6, the far link in the last), and a far host of 203.0.113.0/24."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.far_host = f"203.0.113.{10 + number}"
        self.far_host6 = f"fd18:f{number:03x}::10"
        self.far_link = (self._v4(7, 1), self._v4(7, 2))
        self.far_link6 = (f"fd18:e{number:03x}::1", f"fd18:e{number:03x}::2")
        self.far_ns = f"mhfar{os.getpid()}"  # the far host's network namespace

    def _v4(self, network: int, host: int) -> str:
        index = self.number * 8 + network
        return f"198.{18 + index // 256}.{index % 256}.{host}"

    def subnet(self, network: int) -> str:
        assert 0 <= network < 7, "network 7 is the far link"
        return self._v4(network, 0) + "/24"

    def gateway(self, network: int) -> str:
        """Podman's gateway of the network made on subnet(network)."""
        return self._v4(network, 1)

    def prefix(self, network: int) -> str:
        """The start of every address of subnet(network), e.g. "198.18.9."."""
        return self._v4(network, 0)[:-1]

    def subnet6(self, network: int) -> str:
        return f"fd18:{self.number * 8 + network + 0x100:x}::/64"

    def gateway6(self, network: int) -> str:
        return self.subnet6(network).replace("::/64", "::1")


@contextlib.contextmanager
def claim_slot() -> Iterator[Slot]:
    """A slot no other lab on this host holds (the lock ends with the process)."""
    _LOCKS.mkdir(mode=0o755, exist_ok=True)
    for number in random.sample(range(SLOTS), SLOTS):
        fd = os.open(_LOCKS / f"slot-{number}", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield Slot(number)
        finally:
            os.close(fd)
        return
    raise RuntimeError(f"all {SLOTS} lab slots of this host are taken ({_LOCKS})")


def _strict(ns: str, interface: str) -> None:
    """Strict reverse-path filtering on one interface of namespace `ns` (the
    kernel applies the larger of `all` and the interface's own)."""
    run("ip", "netns", "exec", ns, "sh", "-c",
        f"echo 1 > /proc/sys/net/ipv4/conf/{interface}/rp_filter")


@contextlib.contextmanager
def far_host(slot: Slot) -> Iterator[str]:
    """A namespace standing for a host far away, reachable from every test
    network through the host; addresses and names are this lab's own."""
    ns = slot.far_ns
    host_if = f"mhfar{slot.number}h{os.getpid()}"[:15]
    far4, far6 = f"{slot.far_host}/32", f"{slot.far_host6}/128"
    try:
        run("ip", "netns", "add", ns)
        run("ip", "link", "add", host_if, "type", "veth", "peer", "name", "far0", "netns", ns)
        run("ip", "addr", "add", f"{slot.far_link[0]}/30", "dev", host_if)
        run("ip", "-6", "addr", "add", f"{slot.far_link6[0]}/64", "dev", host_if, "nodad")
        run("ip", "link", "set", host_if, "up")
        inside = ("ip", "netns", "exec", ns)
        run(*inside, "ip", "addr", "add", f"{slot.far_link[1]}/30", "dev", "far0")
        run(*inside, "ip", "-6", "addr", "add", f"{slot.far_link6[1]}/64", "dev", "far0", "nodad")
        run(*inside, "ip", "addr", "add", far4, "dev", "lo")
        run(*inside, "ip", "-6", "addr", "add", far6, "dev", "lo")
        run(*inside, "ip", "link", "set", "lo", "up")
        run(*inside, "ip", "link", "set", "far0", "up")
        # The far host checks sources as a real upstream router does: a reply
        # that comes back by the wrong uplink is dropped here, as there.
        _strict(ns, "far0")
        run(*inside, "ip", "route", "add", "default", "via", slot.far_link[0])
        run(*inside, "ip", "-6", "route", "add", "default", "via", slot.far_link6[0])
        # Through our own veth only: a route of another lab is never ours to touch.
        run("ip", "route", "add", far4, "via", slot.far_link[1], "dev", host_if)
        run("ip", "-6", "route", "add", far6, "via", slot.far_link6[1], "dev", host_if)
        yield slot.far_host
    finally:
        # Deleting the veth takes the routes through it along.
        run("ip", "link", "del", host_if, check=False)
        run("ip", "netns", "del", ns, check=False)


class HostView(NamedTuple):
    """What a hook could change in the host's namespace."""

    rules: str       # ip rule, v4 and v6
    routes: str      # routes of the hook's protocols (17x), every table
    rp_filter: dict[str, str]  # interface -> its rp_filter line


def host_view() -> HostView:
    """The host as a hook could have changed it. Other labs on this host add
    and remove their own interfaces and routes meanwhile, and the last one to
    leave restores `all` and `default`: those are left out."""
    routes = run("sh", "-c", "ip route show table all; ip -6 route show table all").stdout
    rp_filter = {path.split("/")[-2]: path for path in run(
        "sh", "-c", "grep -r . /proc/sys/net/ipv4/conf/*/rp_filter").stdout.split()}
    return HostView(run("sh", "-c", "ip rule; ip -6 rule").stdout,
                    "".join(line for line in routes.splitlines(True) if " proto 17" in line),
                    {k: v for k, v in rp_filter.items() if k not in ("all", "default")})


def host_changes(before: HostView) -> list[str]:
    """What differs from `before` now (interfaces that exist in both), and
    any route of the hook's protocols, before or after: [] when untouched."""
    after = host_view()
    changes = [f"routes of the hook's: {view.routes!r}" for view in (before, after) if view.routes]
    if after.rules != before.rules:
        changes.append(f"rules: {before.rules!r} -> {after.rules!r}")
    changes += [f"{before.rp_filter[k]} -> {after.rp_filter[k]}"
                for k in sorted(before.rp_filter.keys() & after.rp_filter.keys())
                if before.rp_filter[k] != after.rp_filter[k]]
    return changes


@contextlib.contextmanager
def l2_segment(slot: Slot, tag: str, gateway: str) -> Iterator[str]:
    """A link to be a macvlan or ipvlan network's parent: the host's end of
    a veth whose other end, in the far host's namespace, holds `gateway`
    (ADDRESS/PREFIX), so that the far host is one hop away, as a LAN's
    router would be. Yields the parent's name (this run's own)."""
    parent = f"mh{tag}{slot.number}p{os.getpid()}"[:15]
    inside = ("ip", "netns", "exec", slot.far_ns)
    try:
        run("ip", "link", "add", parent, "type", "veth", "peer", "name", f"{tag}gw",
            "netns", slot.far_ns)
        run(*inside, "ip", "addr", "add", gateway, "dev", f"{tag}gw")
        run(*inside, "ip", "link", "set", f"{tag}gw", "up")
        # The LAN's router drops sources that are not of its LAN (uRPF).
        _strict(slot.far_ns, f"{tag}gw")
        run("ip", "link", "set", parent, "up")
        yield parent
    finally:
        run("ip", "link", "del", parent, check=False)  # and its peer


@contextlib.contextmanager
def host_sysctls(values: dict[str, str]) -> Iterator[None]:
    """Set host sysctls (paths under /proc/sys) while any lab runs: the first
    lab saves and sets them, the last one to leave restores them. Each lab
    holds a shared lock on the state file meanwhile; entering and leaving
    are serialised by a second lock, held only for that moment (waiting for
    an exclusive lock on the state file would wait for every running lab)."""
    _LOCKS.mkdir(mode=0o755, exist_ok=True)
    saved = _LOCKS / "sysctls.json"
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
    fd = os.open(_LOCKS / "sysctls.lock", flags, 0o644)
    mutex = os.open(_LOCKS / "sysctls.mutex", flags, 0o644)
    try:
        fcntl.flock(mutex, fcntl.LOCK_EX)
        if not saved.exists():
            saved.write_text(json.dumps({key: (Path("/proc/sys") / key).read_text()
                                         for key in values}))
            for key, value in values.items():
                (Path("/proc/sys") / key).write_text(value)
        fcntl.flock(fd, fcntl.LOCK_SH)
        fcntl.flock(mutex, fcntl.LOCK_UN)
        yield
    finally:
        fcntl.flock(mutex, fcntl.LOCK_EX)
        fcntl.flock(fd, fcntl.LOCK_UN)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # only when no lab is left
        except BlockingIOError:
            pass
        else:
            if saved.exists():
                for key, old in json.loads(saved.read_text()).items():
                    (Path("/proc/sys") / key).write_text(old)
                saved.unlink()
        os.close(fd)
        os.close(mutex)


STRICT_RP_FILTER = {
    "net/ipv4/conf/all/rp_filter": "1",
    "net/ipv4/conf/default/rp_filter": "1",
    "net/ipv6/conf/all/forwarding": "1",
}
