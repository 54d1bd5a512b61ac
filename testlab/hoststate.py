"""The host as `make test` must leave it: saved before the first part,
compared after the last (the tests run podman, networks and namespaces only
in labs of their own, testlab/rootlab.py).

What is compared: the initial network namespace's interfaces and their
addresses, routes and rules of every table (IPv4 and IPv6), its sysctls
under net.ipv4.conf and net.ipv6.conf, forwarding, firewall rules
(iptables-save: netavark's and CNI's chains stay behind), named network
namespaces, and what the host's podman has, if it has one: containers,
networks, pods and volumes.

    python -m testlab.hoststate save FILE    # before
    python -m testlab.hoststate check FILE   # after: exit 1 and what changed
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

# Fields of `ip -j` output that say what a route or address is, not how it
# is doing (counters, expiry of a router advertisement's route).
_ROUTE_KEYS = ("dst", "gateway", "dev", "table", "protocol", "metric", "type", "prefsrc")


def _ip(*argv: str) -> list[dict[str, object]]:
    out = subprocess.run(["ip", "-j", *argv], capture_output=True, text=True,
                         check=True).stdout
    found: list[dict[str, object]] = json.loads(out or "[]")
    return found


def _lines(*argv: str) -> list[str]:
    if shutil.which(argv[0]) is None:
        return [f"{argv[0]}: not installed"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return sorted(line for line in proc.stdout.splitlines()
                  # iptables-save's comments carry the time it ran.
                  if line.strip() and not line.startswith("#"))


def _sysctls() -> dict[str, str]:
    values = {}
    for top in ("ipv4/conf", "ipv6/conf"):
        for path in Path("/proc/sys/net", top).glob("*/*"):
            if path.name in ("rp_filter", "forwarding", "accept_ra", "disable_ipv6"):
                values[str(path.relative_to("/proc/sys/net"))] = path.read_text().strip()
    values["ipv4/ip_forward"] = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    return values


def snapshot() -> dict[str, object]:
    addresses = {str(link["ifname"]): sorted(f"{a['local']}/{a['prefixlen']}"
                                             for a in link.get("addr_info", []))  # type: ignore[attr-defined]
                 for link in _ip("addr")}
    routes = sorted(json.dumps({k: r.get(k) for k in _ROUTE_KEYS}, sort_keys=True)
                    for family in ("-4", "-6")
                    for r in _ip(family, "route", "show", "table", "all"))
    rules = [json.dumps(rule, sort_keys=True) for family in ("-4", "-6")
             for rule in _ip(family, "rule")]
    # A podman installed meanwhile (make all-deps installs every package)
    # with nothing in it is no change: only what it holds counts.
    podman: dict[str, list[str]] = {}
    if shutil.which("podman"):
        for what, argv in {"containers": ("ps", "-a"), "networks": ("network", "ls"),
                           "pods": ("pod", "ls"), "volumes": ("volume", "ls")}.items():
            found = _lines("podman", *argv, "--format",
                           "{{.Name}}" if what == "networks" else "{{.ID}}")
            if found and found != ["podman"]:  # the default network alone: nothing made
                podman[what] = found
    return {"interfaces": addresses, "routes": routes, "rules": rules, "sysctls": _sysctls(),
            "firewall": _lines("iptables-save") + _lines("ip6tables-save"),
            "netns": _lines("ip", "netns", "list"), "podman": podman}


def differences(before: dict[str, object], after: dict[str, object]) -> list[str]:
    """One line per thing that changed: [] when the host is as it was."""
    changes = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            changes += [f"{key} {k}: {old.get(k)!r} -> {new.get(k)!r}"
                        for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)]
        elif isinstance(old, list) and isinstance(new, list):
            changes += [f"{key}: gone: {item}" for item in old if item not in new]
            changes += [f"{key}: new: {item}" for item in new if item not in old]
        else:
            changes.append(f"{key}: {old!r} -> {new!r}")
    return changes


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] not in ("save", "check"):
        print("usage: python -m testlab.hoststate save|check FILE", file=sys.stderr)
        return 2
    command, path = args[0], Path(args[1])
    if command == "save":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(snapshot(), indent=1) + "\n")
        return 0
    changes = differences(json.loads(path.read_text()), snapshot())
    for line in changes:
        print(f"host changed: {line}")
    if not changes:
        print("the host is as it was before the tests: interfaces, routes, rules, "
              "sysctls, firewall, network namespaces, podman")
    return 1 if changes else 0


if __name__ == "__main__":
    sys.exit(main())
