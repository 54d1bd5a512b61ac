"""A disposable lab for the real-podman tests and the demo.

Everything here is created on the host and removed again by the context
managers, even when the body fails: podman config and a busybox rootfs in a
temporary directory, test networks in 198.18.0.0/15, a "far host" in its own
network namespace (203.0.113.10 behind 198.18.255.0/30), and the host's
rp_filter defaults, which a new network namespace copies.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOOK_JSON = REPO / "oci-hooks.d" / "oci-multihome-hook.json"
FAR_HOST = "203.0.113.10"
FAR_HOST6 = "fd18:ff::10"
_FAR_LINK = ("198.18.255.1", "198.18.255.2")
_FAR_LINK6 = ("fd18:fe::1", "fd18:fe::2")
BUSYBOX_APPLETS = ("sh", "ip", "ping", "sleep", "cat", "ls", "true")

_CONTAINERS_CONF = """\
[network]
network_backend = "netavark"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
helper_binaries_dir = ["/usr/lib/podman", "/usr/libexec/podman"]

[containers]
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]
annotations = {annotations}
"""


_counter = itertools.count(1)


def run(*argv: str, check: bool = True, env: dict[str, str] | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output; raise with stderr shown on failure."""
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, input=stdin,
                          timeout=120)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} -> {proc.returncode}: {proc.stderr.strip()}")
    return proc


def hook_binary() -> Path:
    """The hook under test: the venv's console script unless overridden."""
    return Path(os.environ.get("MULTIHOME_HOOK_BIN", REPO / ".venv" / "bin" / "oci-multihome-hook"))


@dataclass
class Container:
    podman: Podman
    name: str
    pid: int

    def ns(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a host binary inside the container's network namespace only."""
        return run("nsenter", "-t", str(self.pid), "-n", *argv, check=check)

    def sysctl(self, path: str) -> int:
        return int(self.ns("cat", f"/proc/sys/net/{path}").stdout)

    def routes(self, family: int = 4) -> list[dict[str, object]]:
        out = self.ns("ip", "-j", f"-{family}", "route", "show", "table", "main").stdout
        return json.loads(out) if out.strip() else []

    def default_routes(self, family: int = 4) -> list[dict[str, object]]:
        return [r for r in self.routes(family) if r["dst"] == "default"]

    def interfaces(self) -> dict[str, list[str]]:
        """Interface name -> its global addresses (v4 and v6)."""
        links = json.loads(self.ns("ip", "-j", "addr", "show").stdout)
        return {link["ifname"]: [a["local"] for a in link["addr_info"]
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

    def loss(self, target: str = FAR_HOST, count: int = 40, bind: str | None = None) -> float:
        """Percentage of pings lost, with gateway neighbours aged fast so that
        the kernel keeps re-evaluating its choice of default route.

        `bind` is a device or a source address (iputils `ping -I`)."""
        for iface in self.interfaces():
            for key, value in (("base_reachable_time_ms", "100"), ("delay_first_probe_time", "1")):
                for fam in ("ipv4", "ipv6"):
                    self.ns("sh", "-c", f"echo {value} > /proc/sys/net/{fam}/neigh/{iface}/{key}")
        argv = ["ping", "-n", "-q", "-c", str(count), "-i", "0.25", "-W", "1"]
        if bind:
            argv += ["-I", bind]
        proc = self.ns(*argv, target, check=False)
        match = re.search(r"([\d.]+)% packet loss", proc.stdout)
        if match:
            return float(match.group(1))
        if "unreachable" in proc.stderr:  # not even sent: no route that way
            return 100.0
        raise RuntimeError(f"ping {target}: no summary: {proc.stdout!r} {proc.stderr!r}")


class Podman:
    """podman with a private containers.conf and a busybox rootfs."""

    def __init__(self, workdir: Path, annotations: Sequence[str] = ()) -> None:
        self.workdir = workdir
        self.conf = workdir / f"containers-{next(_counter)}.conf"
        # Without CAP_SYS_RESOURCE runc cannot raise a limit, and podman's
        # defaults (1048576) are above this machine's hard limits.
        self.conf.write_text(_CONTAINERS_CONF.format(
            nofile=min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 20000),
            nproc=min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 4096),
            annotations=json.dumps(list(annotations))))
        self.rootfs = workdir / "rootfs"
        if not self.rootfs.exists():
            bindir = self.rootfs / "bin"
            bindir.mkdir(parents=True)
            shutil.copy2("/bin/busybox", bindir / "busybox")
            for applet in BUSYBOX_APPLETS:
                (bindir / applet).symlink_to("busybox")
        self.env = dict(os.environ, CONTAINERS_CONF=str(self.conf))

    def with_default_annotations(self, *annotations: str) -> Podman:
        """The same lab with containers.conf `annotations = [...]`: what an admin
        writes to give every container of the host an annotation."""
        return Podman(self.workdir, annotations)

    def __call__(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run("podman", *argv, check=check, env=self.env)

    def hooks_dir(self, mode_regex: str | None = None) -> Path:
        """A hooks dir holding the project's own JSON, only `path` changed."""
        spec = json.loads(HOOK_JSON.read_text())
        spec["hook"]["path"] = str(hook_binary())
        if mode_regex is not None:
            spec["when"]["annotations"] = {"^io\\.multihome\\.mode$": mode_regex}
        hooks = Path(tempfile.mkdtemp(prefix="hooks.", dir=self.workdir))
        hooks.chmod(0o755)  # rootless podman reads it too
        (hooks / "oci-multihome-hook.json").write_text(json.dumps(spec))
        return hooks

    def run_argv(self, networks: Sequence[str], annotations: dict[str, str],
                 hooks: Path | None, extra: Sequence[str] = (),
                 rootfs: Path | None = None) -> list[str]:
        """`podman run` arguments up to and including the rootfs."""
        argv = [] if hooks is None else ["--hooks-dir", str(hooks)]
        argv += ["run", "--cap-add", "NET_RAW", *extra]
        for net in networks:
            argv += ["--network", net]
        for key, value in annotations.items():
            argv += ["--annotation", f"{key}={value}"]
        return [*argv, "--rootfs", str(rootfs or self.rootfs)]

    @contextlib.contextmanager
    def container(self, networks: Sequence[str], annotations: dict[str, str] | None = None,
                  hooks: Path | None = None, extra: Sequence[str] = ()) -> Iterator[Container]:
        """A detached container running `sleep`; removed on exit."""
        name = f"mhtest-{os.getpid()}-{next(_counter)}"
        argv = self.run_argv(networks, annotations or {}, hooks, ["-d", "--name", name, *extra])
        try:
            self(*argv, "sleep", "600")
            pid = int(self("inspect", "-f", "{{.State.Pid}}", name).stdout)
            yield Container(self, name, pid)
        finally:
            self("rm", "-f", "-t", "0", name, check=False)




@contextlib.contextmanager
def podman_env() -> Iterator[Podman]:
    with tempfile.TemporaryDirectory(prefix="multihome-lab.") as tmp:
        yield Podman(Path(tmp))


@contextlib.contextmanager
def networks(podman: Podman, subnets: Sequence[str], ipv6: Sequence[str | None] = (),
             prefix: str = "mhtest") -> Iterator[list[str]]:
    """Podman networks on the given subnets (optionally dual-stack)."""
    names: list[str] = []
    try:
        for i, subnet in enumerate(subnets):
            name = f"{prefix}{os.getpid()}n{i}"
            argv = ["network", "create", "--subnet", subnet]
            v6 = ipv6[i] if i < len(ipv6) else None
            if v6:
                argv += ["--ipv6", "--subnet", v6]
            podman(*argv, name)
            names.append(name)
        yield names
    finally:
        for name in names:
            podman("network", "rm", "-f", name, check=False)


@contextlib.contextmanager
def far_host() -> Iterator[str]:
    """A namespace standing for a host far away, reachable from every test network."""
    ns, host_if = f"mhfar{os.getpid()}", f"mhfar{os.getpid()}"[:12] + "h"
    try:
        run("ip", "netns", "add", ns)
        run("ip", "link", "add", host_if, "type", "veth", "peer", "name", "far0", "netns", ns)
        run("ip", "addr", "add", f"{_FAR_LINK[0]}/30", "dev", host_if)
        run("ip", "-6", "addr", "add", f"{_FAR_LINK6[0]}/64", "dev", host_if, "nodad")
        run("ip", "link", "set", host_if, "up")
        inside = ("ip", "netns", "exec", ns)
        run(*inside, "ip", "addr", "add", f"{_FAR_LINK[1]}/30", "dev", "far0")
        run(*inside, "ip", "-6", "addr", "add", f"{_FAR_LINK6[1]}/64", "dev", "far0", "nodad")
        run(*inside, "ip", "addr", "add", f"{FAR_HOST}/32", "dev", "lo")
        run(*inside, "ip", "-6", "addr", "add", f"{FAR_HOST6}/128", "dev", "lo")
        run(*inside, "ip", "link", "set", "lo", "up")
        run(*inside, "ip", "link", "set", "far0", "up")
        run(*inside, "ip", "route", "add", "default", "via", _FAR_LINK[0])
        run(*inside, "ip", "-6", "route", "add", "default", "via", _FAR_LINK6[0])
        run("ip", "route", "add", f"{FAR_HOST}/32", "via", _FAR_LINK[1])
        run("ip", "-6", "route", "add", f"{FAR_HOST6}/128", "via", _FAR_LINK6[1])
        yield FAR_HOST
    finally:
        run("ip", "route", "del", f"{FAR_HOST}/32", check=False)
        run("ip", "-6", "route", "del", f"{FAR_HOST6}/128", check=False)
        run("ip", "link", "del", host_if, check=False)
        run("ip", "netns", "del", ns, check=False)


@contextlib.contextmanager
def host_sysctls(values: dict[str, str]) -> Iterator[None]:
    """Set host sysctls (paths under /proc/sys) and restore them afterwards."""
    saved: dict[Path, str] = {}
    try:
        for key, value in values.items():
            path = Path("/proc/sys") / key
            saved[path] = path.read_text()
            path.write_text(value)
        yield
    finally:
        for path, old in saved.items():
            path.write_text(old)


STRICT_RP_FILTER = {
    "net/ipv4/conf/all/rp_filter": "1",
    "net/ipv4/conf/default/rp_filter": "1",
    "net/ipv6/conf/all/forwarding": "1",
}
