"""`oci-multihome-hook doctor`: is this host affected, and what to do next.

What it reads (gather): the host's rp_filter defaults, which a container's
namespace copies; podman's version, network backend, OCI runtime and
networks; the containers.conf files podman reads (hooks_dir, a host-wide
io.multihome.mode); where the hook's JSON is. What it concludes (judge) is
pure: the facts in, the verdict and the next command out.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .errors import OK, PROBLEM, HookError
from .modes import MODE_KEY

HOOK_JSON = "oci-multihome-hook.json"
SHARE_HOOKS = "/usr/share/containers/oci/hooks.d"
ETC_HOOKS = "/etc/containers/oci/hooks.d"
_L2 = ("macvlan", "ipvlan")


@dataclass(frozen=True)
class Facts:
    rp_filter_all: int
    rp_filter_default: int
    podman: str | None = None  # its version; None: not installed
    backend: str | None = None  # netavark or cni
    backend_version: str | None = None
    runtime: str | None = None  # crun, runc
    networks: tuple[tuple[str, str], ...] = ()  # (name, driver)
    hooks_dirs: tuple[str, ...] = ()  # where this podman reads hooks
    hook_in: tuple[str, ...] = ()  # hooks dirs (read or not) holding our JSON
    default_mode: str | None = None  # containers.conf annotations

    @property
    def major(self) -> int:
        return _version(self.podman)[0]

    @property
    def effective(self) -> int:
        """What a container's interface filters with: the kernel takes the
        larger of `all` and the interface's, which copies `default`."""
        return max(self.rp_filter_all, self.rp_filter_default)


@dataclass
class Verdict:
    status: int  # OK, PROBLEM
    affected: list[str] = field(default_factory=list)  # why, one line each
    notes: list[str] = field(default_factory=list)
    next: str = ""


def _filtering(value: int) -> str:
    return {0: "no filtering (0)", 1: "strict (1)", 2: "loose filtering (2)"}.get(
        value, str(value))


def _version(text: str | None) -> tuple[int, ...]:
    found = re.search(r"(\d+)\.(\d+)", text or "")
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


def judge(facts: Facts) -> Verdict:
    verdict = Verdict(OK)
    if facts.podman is None:
        verdict.notes.append("podman is not installed: nothing to judge but rp_filter")
        verdict.next = "install podman, then run doctor again"
        return verdict
    l2 = [name for name, driver in facts.networks if driver in _L2]
    bridges = [name for name, driver in facts.networks if driver == "bridge"]
    netavark = _version(facts.backend_version) if facts.backend == "netavark" else (0, 0)
    if facts.effective == 1:
        if facts.backend == "cni" or netavark < (1, 11):
            verdict.affected.append(
                "rp_filter is strict and this network backend leaves it so: a container on "
                "two networks loses the replies that arrive on the other one")
        elif l2:
            verdict.affected.append(
                f"rp_filter is strict and netavark loosens only its bridges: a container on "
                f"{' or '.join(l2)} and another network loses replies")
        else:
            verdict.notes.append("netavark loosens the bridges it manages (rp_filter 2): two "
                                 "bridges lose nothing, at the price of anti-spoofing")
    else:
        verdict.notes.append(f"rp_filter is {_filtering(facts.effective)} here: replies are "
                             "accepted on every interface (RHEL and hardened hosts are strict)")
    if netavark >= (2, 0) and l2 and bridges:
        verdict.affected.append(
            f"netavark {'.'.join(map(str, netavark))} puts {', '.join(l2)}'s default route "
            "first (metric 99): a port published on a bridge beside it never answers, "
            "whatever rp_filter says")
    read = [d for d in facts.hook_in if d in facts.hooks_dirs]
    if facts.hook_in and not read:
        verdict.notes.append(f"{HOOK_JSON} is in {', '.join(facts.hook_in)}, which podman "
                             f"{facts.podman} does not read (it reads "
                             f"{', '.join(facts.hooks_dirs)})")
    if facts.runtime == "crun":
        verdict.notes.append("crun drops a hook's stderr: a refused container's reason is in "
                             "the journal (journalctl -t oci-multihome-hook)")
    if verdict.affected and not read:
        verdict.status = PROBLEM
        verdict.next = ("install the package (README: Install), then annotate: podman run "
                        f"--annotation {MODE_KEY}=source-routing ...")
    elif verdict.affected and facts.default_mode is None:
        verdict.next = ("annotate the containers on two networks (--annotation "
                        f"{MODE_KEY}=source-routing), then: oci-multihome-hook diagnose --all")
    else:
        verdict.next = "oci-multihome-hook diagnose --all"
    return verdict


# --- what the host has -------------------------------------------------------


def _sysctl(name: str) -> int:
    return int(Path(f"/proc/sys/net/ipv4/conf/{name}/rp_filter").read_text())


def _podman_json(*argv: str) -> object:
    proc = subprocess.run(["podman", *argv, "--format", "json"], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise HookError(f"podman {argv[0]}: {lines[-1] if lines else proc.returncode}")
    return json.loads(proc.stdout)


def _conf_files() -> list[Path]:
    """The containers.conf files podman reads, in order (root's)."""
    if os.environ.get("CONTAINERS_CONF"):
        files = [Path(os.environ["CONTAINERS_CONF"])]
    else:
        files = [Path("/usr/share/containers/containers.conf"),
                 Path("/etc/containers/containers.conf"),
                 *sorted(Path("/etc/containers/containers.conf.d").glob("*.conf"))]
    if os.environ.get("CONTAINERS_CONF_OVERRIDE"):
        files.append(Path(os.environ["CONTAINERS_CONF_OVERRIDE"]))
    return files


def _conf_list(key: str) -> list[str] | None:
    """The last value of a list of strings `key` in the containers.conf files
    (TOML; Python 3.9 has no tomllib, and these lists are Python literals)."""
    value = None
    for path in _conf_files():
        try:
            text = path.read_text()
        except OSError:
            continue
        for found in re.finditer(rf"^\s*{key}\s*=\s*(\[[^]]*\])", text, re.MULTILINE):
            try:
                parsed = ast.literal_eval(found.group(1))
            except (ValueError, SyntaxError):
                continue
            if isinstance(parsed, list):
                value = [str(v) for v in parsed]
    return value


def gather() -> Facts:
    all_, default = _sysctl("all"), _sysctl("default")
    try:
        info = _podman_json("info")
    except FileNotFoundError:
        return Facts(all_, default)
    assert isinstance(info, dict)
    host = info.get("host", {})
    podman = str(info.get("version", {}).get("Version", ""))
    backend = host.get("networkBackend")
    backend_version = (host.get("networkBackendInfo") or {}).get("version")
    if backend == "netavark" and not backend_version:  # podman before 4.5 does not say
        for helper in ("/usr/libexec/podman/netavark", "/usr/lib/podman/netavark"):
            if os.access(helper, os.X_OK):
                backend_version = subprocess.run([helper, "--version"], capture_output=True,
                                                 text=True, timeout=30).stdout.strip()
                break
    networks = _podman_json("network", "ls")
    assert isinstance(networks, list)
    defaults = [SHARE_HOOKS] if _version(podman)[0] >= 5 else [SHARE_HOOKS, ETC_HOOKS]
    hooks_dirs = tuple(_conf_list("hooks_dir") or defaults)
    candidates = dict.fromkeys([*hooks_dirs, SHARE_HOOKS, ETC_HOOKS])
    annotations = _conf_list("annotations") or []
    modes = [a.split("=", 1)[1] for a in annotations if a.startswith(f"{MODE_KEY}=")]
    return Facts(all_, default, podman, backend, backend_version,
                 (host.get("ociRuntime") or {}).get("name"),
                 tuple((str(n.get("name")), str(n.get("driver"))) for n in networks),
                 hooks_dirs, tuple(d for d in candidates if Path(d, HOOK_JSON).exists()),
                 modes[-1] if modes else None)


def lines(facts: Facts, verdict: Verdict) -> list[str]:
    out = [f"rp_filter: all {facts.rp_filter_all}, default {facts.rp_filter_default}: "
           f"{_filtering(facts.effective)} for a new container's interfaces"]
    if facts.podman is not None:
        out.append(f"podman {facts.podman}, network backend {facts.backend} "
                   f"({facts.backend_version or 'version unknown'}), runtime {facts.runtime}")
        out.append("networks: " + (", ".join(f"{n} ({d})" for n, d in facts.networks)
                                   or "none"))
        out.append(f"hooks: podman reads {', '.join(facts.hooks_dirs)}; {HOOK_JSON} "
                   + (f"in {', '.join(facts.hook_in)}" if facts.hook_in else "not found"))
        out.append(f"host-wide default: {MODE_KEY}={facts.default_mode}" if facts.default_mode
                   else "host-wide default: none (containers.conf annotations)")
    out += [f"note: {note}" for note in verdict.notes]
    out.append("verdict: affected" if verdict.affected else "verdict: not affected")
    out += [f"  {reason}" for reason in verdict.affected]
    out.append(f"next: {verdict.next}")
    return out
