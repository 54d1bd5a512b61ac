"""A container seen from inside, the same for every lab (testlab/lab.py and
testlab/rootlab.py): its routes, sysctls and interfaces as the kernel has
them, and what the tests measure there (ping loss); the failing order of
two default routes, made rather than hoped for."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import TypeVar


class InNetns:
    """What the tests read and measure in a container's network namespace,
    the same for both labs (this one and testlab/rootlab.py): each says how
    to run a command there (`ns`), in its far host's namespace (`far`), where
    podman's networks live (`host`) and in the container itself (`start`)."""

    far_host: str
    far_host6: str
    python: str = "python3"  # an interpreter for the far host's side

    def ns(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        raise NotImplementedError

    def far(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        raise NotImplementedError

    def host(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command where podman's networks live (the lab's namespace)."""
        raise NotImplementedError

    def start(self, *argv: str) -> None:
        """A process in the container, detached: it ends with the container."""
        raise NotImplementedError

    def sysctl(self, path: str) -> int:
        return int(self.ns("cat", f"/proc/sys/net/{path}").stdout)

    def routes(self, family: int = 4) -> list[dict[str, object]]:
        out = self.ns("ip", "-j", f"-{family}", "route", "show", "table", "main").stdout
        return json.loads(out) if out.strip() else []

    def default_routes(self, family: int = 4) -> list[dict[str, object]]:
        """Default routes of the main table, in the kernel's order."""
        return [r for r in self.routes(family) if r["dst"] == "default"]

    def interfaces(self) -> dict[str, list[str]]:
        """Interface name -> its global addresses (v4 and v6)."""
        links = json.loads(self.ns("ip", "-j", "addr", "show").stdout)
        return {link["ifname"]: [a["local"] for a in link.get("addr_info", [])
                                 if a.get("scope") == "global"]
                for link in links if link["ifname"] != "lo"}

    def interface_in(self, prefix: str) -> str:
        """The interface whose address starts with prefix (eth0 is not always --network #1)."""
        for name, addrs in self.interfaces().items():
            if any(a.startswith(prefix) for a in addrs):
                return name
        raise LookupError(prefix)

    def settle(self, timeout: float = 5) -> None:
        """Wait for IPv6 duplicate address detection, after which the kernel
        stops adding link-local routes on its own."""
        deadline = time.monotonic() + timeout
        while self.ns("ip", "-6", "addr", "show", "tentative").stdout.strip():
            if time.monotonic() > deadline:
                raise TimeoutError("IPv6 addresses still tentative")
            time.sleep(0.1)

    def tx_packets(self, dev: str) -> int:
        (link,) = json.loads(self.ns("ip", "-j", "-s", "link", "show", dev).stdout)
        return int(link["stats64"]["tx"]["packets"])

    def loss(self, target: str | None = None, count: int = 40, bind: str | None = None,
             interval: float = 0.25, wait: float = 1, deadline: int | None = None) -> float:
        """Percentage of pings lost, with gateway neighbours aged fast so that
        the kernel keeps re-evaluating its choice of default route (a stale
        gateway makes it try the other default: replies then alternate
        between the uplinks whatever the interval).

        `target` defaults to the lab's far host; `bind` is a device or a
        source address (iputils `ping -I`); `wait`: seconds for a reply;
        `deadline`: seconds in all (a device without a route ARPs for the
        target itself, and each unanswered request holds ping for seconds).
        A run the deadline cut short while replies were coming measured a
        busy machine, not the network: it is measured again, with time."""
        target = target or self.far_host
        age = " ".join(f"{fam}/neigh/{dev}/{key}"
                       for dev in self.interfaces() for fam in ("ipv4", "ipv6")
                       for key in ("base_reachable_time_ms=100", "delay_first_probe_time=1"))
        bind_arg = f"-I {bind}" if bind else ""

        def ping(seconds: int | None) -> subprocess.CompletedProcess[str]:
            limit = f" -w {seconds}" if seconds is not None else ""
            return self.ns("sh", "-c", f"""
                for kv in {age}; do echo "${{kv#*=}}" > "/proc/sys/net/${{kv%%=*}}"; done
                exec ping -n -q -c {count} -i {interval} -W {wait} {bind_arg}{limit} {target}""",
                           check=False)

        proc = ping(deadline)
        sent = re.search(r"(\d+) packets transmitted, (\d+) received", proc.stdout)
        if deadline is not None and sent and int(sent[2]) > 0 and int(sent[1]) < count:
            proc = ping(deadline * 5)
        return ping_loss(proc, target)


def ping_loss(proc: subprocess.CompletedProcess[str], target: str) -> float:
    """The % of pings lost, from a finished iputils ping's summary."""
    match = re.search(r"([\d.]+)% packet loss", proc.stdout)
    if match:
        return float(match.group(1))
    if "unreachable" in proc.stderr:  # not even sent: no route that way
        return 100.0
    raise RuntimeError(f"ping {target}: no summary: {proc.stdout!r} {proc.stderr!r}")


R = TypeVar("R", bound=InNetns)


@contextlib.contextmanager
def failing_order(start: Callable[[], contextlib.AbstractContextManager[R]],
                  attempts: int = 16) -> Iterator[R]:
    """A container (from `start`) whose two IPv4 default routes are in an
    order that loses packets: the second one's device filters strictly, so
    a reply that arrives there while the first is the best route back is
    dropped. Podman gives both defaults the same metric, in an order it
    does not fix (measured: netavark either, about half the time each; CNI
    the first network's mostly second); with both devices strict (podman
    4) either order fails, but podman 5 loosens bridges: there only a
    bridge's default first, before a macvlan's, does. The failing condition
    is made, not hoped for: new containers until the order is a failing one."""
    seen: set[str] = set()
    for _ in range(attempts):
        with start() as c:
            routes = c.default_routes()
            second = [(r["dev"], c.sysctl(f"ipv4/conf/{r['dev']}/rp_filter")) for r in routes[1:]]
            if len(routes) == 2 and second[0][1] == 1:
                yield c
                return
            seen.add(", ".join(f"{dev} second with rp_filter {value}" for dev, value in second))
    raise RuntimeError(f"no container's default routes came in a failing order in "
                       f"{attempts} attempts; seen: {'; '.join(sorted(seen))}")
