"""`oci-multihome-hook doctor`: is this host affected, and what to do next.

What it reads (gather): the host's rp_filter defaults, which a container's
namespace copies; podman's version, network backend, OCI runtime and
networks, with the host's filter on each bridge; the containers.conf files
podman reads (hooks_dir, a host-wide io.multihome.mode); where the hook's
JSON is. What it concludes (judge) is pure, and comes from diagnose's own
model (diagnosis.py): for each pair of this host's networks, the container
podman would make on them, unhooked, with and without a published port.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
from pathlib import Path

from . import containers, diagnosis, hookfiles, host
from .errors import OK, PROBLEM, HookError
from .kernel import AF_INET, ALL, DEFAULT, Address, Nexthop, Route, Routing
from .models import PodmanInfo, PodmanNetworkInspect, parse
from .modes import MODE_KEY
from .records import Record

HOOK_JSON = "oci-multihome-hook.json"
SHARE_HOOKS = "/usr/share/containers/oci/hooks.d"
ETC_HOOKS = "/etc/containers/oci/hooks.d"
# netavark >= 1.11 writes rp_filter 2 on the container's side of its bridges
# and on the bridge; 2.0 gives macvlan and ipvlan default routes metric 99.
LOOSENS_BRIDGES, LAN_FIRST = (1, 11), (2, 0)
_PORT = "8080->80/tcp"


class Network(Record):
    """One podman network: `host_filter`, for a bridge, the host's effective
    rp_filter on it (None: its interface does not exist yet)."""

    __slots__ = ("name", "driver", "host_filter")

    def __init__(self, name: str, driver: str, host_filter: int | None = None) -> None:
        self.name, self.driver, self.host_filter = name, driver, host_filter


class Facts(Record):
    """What doctor read of the host; `podman` None: not on PATH."""

    __slots__ = ("rp_filter_all", "rp_filter_default", "podman", "backend", "backend_version",
                 "runtime", "networks", "hooks_dirs", "hook_in", "default_mode", "invalid_hooks")

    def __init__(self, rp_filter_all: int, rp_filter_default: int, podman: str | None = None,
                 backend: str | None = None, backend_version: str | None = None,
                 runtime: str | None = None, networks: tuple[Network, ...] = (),
                 hooks_dirs: tuple[str, ...] = (), hook_in: tuple[str, ...] = (),
                 default_mode: str | None = None,
                 invalid_hooks: tuple[tuple[str, str], ...] = ()) -> None:
        self.rp_filter_all, self.rp_filter_default = rp_filter_all, rp_filter_default
        self.podman, self.backend, self.backend_version = podman, backend, backend_version
        self.runtime, self.networks, self.hooks_dirs = runtime, networks, hooks_dirs
        self.hook_in, self.default_mode = hook_in, default_mode
        # (file, problem) in hooks_dirs, each with what podman does about it.
        self.invalid_hooks = invalid_hooks

    @property
    def effective(self) -> int:
        """What a container's interface filters with: the kernel takes the
        larger of `all` and the interface's, which copies `default`."""
        return max(self.rp_filter_all, self.rp_filter_default)

    @property
    def netavark(self) -> tuple[int, ...]:
        return _version(self.backend_version) if self.backend == "netavark" else (0, 0)


class Verdict(Record):
    """`affected`: True, False, or None (unknown: no podman to ask)."""

    __slots__ = ("status", "affected", "reasons", "notes", "next")

    def __init__(self, status: int, affected: bool | None, reasons: list[str],
                 notes: list[str], next: str) -> None:
        self.status, self.affected, self.reasons = status, affected, reasons
        self.notes, self.next = notes, next


def _filtering(value: int) -> str:
    return {0: "no filtering (0)", 1: "strict (1)", 2: "loose filtering (2)"}.get(
        value, str(value))


def _version(text: str | None) -> tuple[int, ...]:
    found = re.search(r"(\d+)\.(\d+)", text or "")
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


# --- the containers this host would make --------------------------------------


def _pairs(networks: tuple[Network, ...]) -> list[tuple[Network, Network]]:
    """One pair of networks per combination of kinds (two bridges, a bridge
    and a LAN, two LANs): internal networks give no default route."""
    found: dict[tuple[str, str], tuple[Network, Network]] = {}
    usable = [n for n in networks if n.driver in ("bridge", *diagnosis.LAN_DRIVERS)]
    for i, first in enumerate(usable):
        for second in usable[i + 1:]:
            kinds = tuple(sorted("bridge" if n.driver == "bridge" else "lan"
                                 for n in (first, second)))
            found.setdefault((kinds[0], kinds[1]), (first, second))
    return list(found.values())


def _container(facts: Facts, pair: tuple[Network, Network],
               port: bool) -> tuple[Routing, dict[str, int], diagnosis.Around]:
    """The namespace podman would give a container on `pair`, as diagnose
    would read it: eth0 and eth1, a default route each."""
    links = {1: "lo", 2: "eth0", 3: "eth1"}
    addresses = tuple(Address(i, AF_INET, f"198.18.{i}.2", 24) for i in (2, 3))
    routes = tuple(Route(AF_INET, 99 if n.driver in diagnosis.LAN_DRIVERS
                         and facts.netavark >= LAN_FIRST else 100,
                         (Nexthop(i, links[i], f"198.18.{i}.1"),))
                   for i, n in zip((2, 3), pair))
    loosened = facts.netavark >= LOOSENS_BRIDGES
    rp_filter = {ALL: facts.rp_filter_all, DEFAULT: facts.rp_filter_default,
                 **{links[i]: 2 if n.driver == "bridge" and loosened
                    else facts.rp_filter_default for i, n in zip((2, 3), pair)}}
    host_filter = {i: _host_filter(facts, n) for i, n in zip((2, 3), pair)
                   if n.driver == "bridge"}
    # A port leads to a bridge's address, either one's (netavark's choice).
    around = diagnosis.Around({2: pair[0].name, 3: pair[1].name},
                              {2: pair[0].driver, 3: pair[1].driver}, host_filter,
                              [_PORT] if port else [])
    return Routing(links, addresses, routes), rp_filter, around


def _host_filter(facts: Facts, network: Network) -> int:
    """The host's filter on a bridge: as read, or, for one not made yet,
    what its interface will copy (netavark >= 1.11 loosens it)."""
    if network.host_filter is not None:
        return network.host_filter
    return 2 if facts.netavark >= LOOSENS_BRIDGES else facts.effective


def _affected(facts: Facts) -> tuple[list[str], list[str]]:
    """(reasons, risks): diagnose's problems and risks of the containers
    this host would make on two of its networks."""
    reasons: list[str] = []
    risks: list[str] = []
    for pair in _pairs(facts.networks):
        bridge = any(n.driver == "bridge" for n in pair)
        for port in (False, True) if bridge else (False,):
            findings = diagnosis.verdict(*_container(facts, pair, port))
            shape = f"a container on {pair[0].name} and {pair[1].name}" + (
                ", a port published" if port else "")
            # The port's variant adds what the port alone loses.
            problems = [f for f in findings if f.severity == diagnosis.PROBLEM
                        and (f.kind == diagnosis.PORT or not port)]
            if problems:
                kinds = ", ".join(sorted({f.kind for f in problems}))
                reasons.append(f"{shape}: drops {kinds} traffic ({problems[0].text})")
            elif any(f.severity == diagnosis.RISK and (f.kind == diagnosis.PORT or not port)
                     for f in findings):
                risks.append(f"{shape}: gets through only because nothing on the way checks "
                             "sources")
    return reasons, risks


def judge(facts: Facts) -> Verdict:
    notes: list[str] = []
    if facts.podman is None:
        return Verdict(OK, None, [], ["podman is not on PATH: which networks this host makes is "
                                      "unknown (a CRI-O node? sudo's secure_path?)"],
                       "oci-multihome-hook diagnose pid:N (N: a container's process id on "
                       "the host)")
    reasons, risks = _affected(facts)
    notes += risks
    if facts.netavark >= LOOSENS_BRIDGES:
        strict = [n.name for n in facts.networks if n.host_filter == 1]
        if strict:
            notes.append(f"the host filters strictly on {', '.join(strict)} although netavark "
                         "loosens its bridges: something set them back (systemd-udevd with a "
                         "sysctl.d rp_filter = 1 for *, as RHEL ships)")
    read = [d for d in facts.hook_in if d in facts.hooks_dirs]
    if facts.hook_in and not read:
        notes.append(f"{HOOK_JSON} is in {', '.join(facts.hook_in)}, which podman "
                     f"{facts.podman} does not read (it reads {', '.join(facts.hooks_dirs)})")
    if facts.runtime == "crun":
        notes.append("crun drops a hook's stderr: a refused container's reason is in the "
                     "journal (journalctl -t oci-multihome-hook)")
    if len(facts.networks) < 2:
        notes.append("fewer than two podman networks: nothing to judge until there are two")
    if reasons and not read:
        return Verdict(PROBLEM, True, reasons, notes,
                       "install the package (README: Install), then annotate: podman run "
                       f"--annotation {MODE_KEY}=source-routing ...")
    if reasons and facts.default_mode is None:
        return Verdict(OK, True, reasons, notes,
                       f"annotate the containers on two networks (--annotation {MODE_KEY}="
                       "source-routing), then: oci-multihome-hook diagnose --all")
    return Verdict(OK, bool(reasons), reasons, notes, "oci-multihome-hook diagnose --all")


# --- what the host has -------------------------------------------------------


def _conf_files() -> list[Path]:
    """The containers.conf files podman reads, in order (root's)."""
    if os.environ.get("CONTAINERS_CONF"):
        files = [Path(os.environ["CONTAINERS_CONF"])]
    else:
        files = [Path("/usr/share/containers/containers.conf"),
                 Path("/etc/containers/containers.conf"),
                 *sorted(Path("/usr/share/containers/containers.conf.d").glob("*.conf")),
                 *sorted(Path("/etc/containers/containers.conf.d").glob("*.conf"))]
    if os.environ.get("CONTAINERS_CONF_OVERRIDE"):
        files.append(Path(os.environ["CONTAINERS_CONF_OVERRIDE"]))
    return files


# A list that adds to the one before instead of replacing it (podman 6:
# `hooks_dir = ["/opt/hooks", {append=true}]`).
_APPEND = re.compile(r",?\s*\{\s*append\s*=\s*true\s*\}")


def _conf_list(key: str, default: list[str]) -> list[str]:
    """The value of a list of strings `key` after every containers.conf file
    (TOML; Python 3.9 has no tomllib, and these lists are Python literals)."""
    value = default
    for path in _conf_files():
        try:
            text = path.read_text()
        except OSError:
            continue
        for found in re.finditer(rf"^\s*{key}\s*=\s*(\[[^]]*\])", text, re.MULTILINE):
            literal, appends = _APPEND.subn("", found.group(1))
            try:
                parsed = ast.literal_eval(literal)
            except (ValueError, SyntaxError):
                continue
            if isinstance(parsed, list):
                value = [*(value if appends else []), *(str(v) for v in parsed)]
    return value


def _netavark_version() -> str | None:
    """podman before 4.5 does not say: ask netavark itself."""
    for helper in ("/usr/libexec/podman/netavark", "/usr/lib/podman/netavark"):
        if os.access(helper, os.X_OK):
            return subprocess.run([helper, "--version"], capture_output=True, text=True,
                                  timeout=30).stdout.strip()
    return None


def gather() -> Facts:
    all_, default = host.rp_filter(ALL), host.rp_filter(DEFAULT)
    try:
        info = parse(PodmanInfo, json.loads(containers.podman("info", "--format", "json")))
        listed = json.loads(containers.podman("network", "ls", "--format", "json"))
    except containers.NoPodman:
        return Facts(all_, default)
    except ValueError as exc:  # also pydantic's ValidationError
        raise HookError(f"unexpected podman output: {exc}") from None
    if info.host is None or info.version is None:
        raise HookError("unexpected podman info output: no host or version")
    networks = tuple(
        Network(n.name, n.driver, host.bridge_filter(n.network_interface)
                if n.driver == "bridge" else None)
        for n in (parse(PodmanNetworkInspect, raw) for raw in listed) if not n.internal)
    backend = info.host.network_backend
    backend_version = info.host.network_backend_info.version or (
        _netavark_version() if backend == "netavark" else None)
    podman = info.version.version
    defaults = [SHARE_HOOKS] if _version(podman)[0] >= 5 else [SHARE_HOOKS, ETC_HOOKS]
    hooks_dirs = tuple(_conf_list("hooks_dir", defaults))
    candidates = dict.fromkeys([*hooks_dirs, SHARE_HOOKS, ETC_HOOKS])
    annotations = _conf_list("annotations", [])
    modes = [a.split("=", 1)[1] for a in annotations if a.startswith(f"{MODE_KEY}=")]
    return Facts(all_, default, podman, backend, backend_version, info.host.oci_runtime.name,
                 networks, hooks_dirs, tuple(d for d in candidates if Path(d, HOOK_JSON).exists()),
                 modes[-1] if modes else None, tuple(hookfiles.invalid(hooks_dirs)))


def lines(facts: Facts, verdict: Verdict) -> list[str]:
    out = [f"rp_filter: all {facts.rp_filter_all}, default {facts.rp_filter_default}: "
           f"{_filtering(facts.effective)} for a new container's interfaces"]
    if facts.podman is not None:
        out.append(f"podman {facts.podman}, network backend {facts.backend} "
                   f"({facts.backend_version or 'version unknown'}), runtime {facts.runtime}")
        out.append("networks: " + (", ".join(
            f"{n.name} ({n.driver}" + (f", host rp_filter {n.host_filter}"
                                       if n.host_filter is not None else "") + ")"
            for n in facts.networks) or "none"))
        out.append(f"hooks: podman reads {', '.join(facts.hooks_dirs)}; {HOOK_JSON} "
                   + (f"in {', '.join(facts.hook_in)}" if facts.hook_in else "not found"))
        out += [f"invalid hook {path}: {problem}" for path, problem in facts.invalid_hooks]
        out.append(f"host-wide default: {MODE_KEY}={facts.default_mode}" if facts.default_mode
                   else "host-wide default: none (containers.conf annotations)")
    out += [f"note: {note}" for note in verdict.notes]
    out.append({True: "verdict: affected", False: "verdict: not affected",
                None: "verdict: unknown"}[verdict.affected])
    out += [f"  {reason}" for reason in verdict.reasons]
    out.append(f"next: {verdict.next}")
    return out
