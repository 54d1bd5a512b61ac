"""What the host around a container holds that decides where its replies
die: the rp_filter of the bridges behind its interfaces, and the address
each published port leads to. Read in the host's network namespace; each
reading is a detail of a report, never its failure (None: not known)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from .kernel import ALL, IPV4_CONF


def _valid_interface(name: str) -> bool:
    """A kernel interface name, safe to put in a sysctl path (podman's
    answer, but a path is never built from unchecked text)."""
    return 0 < len(name.encode()) <= 15 and "/" not in name and name not in (".", "..") \
        and not name.isspace()


def rp_filter(conf: str) -> int:
    """The host's rp_filter of `conf` (an interface, `all` or `default`)
    as set; OSError or ValueError when it cannot be read."""
    return int(Path(IPV4_CONF, conf, "rp_filter").read_text())


def bridge_filter(interface: str) -> int | None:
    """The host's effective rp_filter on `interface`: max(all, its own)."""
    if not _valid_interface(interface):
        return None
    try:
        return max(rp_filter(ALL), rp_filter(interface))
    except (OSError, ValueError):
        return None


def port_target(ruleset: str, port: int) -> str:
    """The address a published TCP port leads to, from `nft list ruleset`
    (netavark's nftables driver, or iptables-nft's rules seen by nft).
    netavark (1.4 to 2.0 alike) publishes a port on every network of the
    container, one jump per network in an order that changes with each
    container: the first one wins."""
    chains: dict[str, list[str]] = {}
    chain = ""
    for line in ruleset.splitlines():
        words = line.split()
        if words[:1] == ["chain"]:
            chain = words[1]
        elif words:
            chains.setdefault(chain, []).append(line)
    dport = re.compile(rf"\bdport {port}\b")
    for rule in chains.get("NETAVARK-HOSTPORT-DNAT", []):
        jump = re.search(r"\bjump (\S+)", rule)
        if dport.search(rule) and jump:
            for target in chains.get(jump.group(1), []):
                dnat = re.search(r"\bdnat (?:ip )?to (\d+\.\d+\.\d+\.\d+):", target)
                if dport.search(target) and dnat:
                    return dnat.group(1)
    raise LookupError(f"no DNAT rule for port {port} in the ruleset")


def port_targets(ports: tuple[str, ...]) -> list[str] | None:
    """The addresses the published TCP ports ("HOSTPORT->PORT/tcp") lead to,
    from netavark's rules; None where nft cannot tell (not installed, CNI's
    rules, iptables-legacy)."""
    try:
        ruleset = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True,
                                 timeout=30, stdin=subprocess.DEVNULL, check=True).stdout
        return [port_target(ruleset, int(p.split("->", 1)[0])) for p in ports
                if p.endswith("/tcp") and p.split("->", 1)[0].isdecimal()]
    except (OSError, subprocess.SubprocessError, LookupError):
        return None
