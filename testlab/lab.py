"""A disposable lab for the real-podman tests, the demo and the benchmark.

Everything here is created on the host and removed again by the context
managers, even when the body fails: podman config and a busybox rootfs in a
temporary directory, test networks, a "far host" in its own network
namespace, and the host's rp_filter defaults, which a new network namespace
copies. Other labs may run on the same host at the same time: each one
claims a slot (a lock file under /run), which gives it addresses of its own
(Slot), and the host sysctls are set once for all the labs running and
restored by the last one to leave. A lab's podman runs runc or crun, with
netavark or CNI networks (Podman.variant).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import itertools
import json
import os
import queue
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TypeVar

from .journal import Journal, listening

REPO = Path(__file__).resolve().parent.parent
HOOK_JSON = REPO / "oci-hooks.d" / "oci-multihome-hook.json"
# The hook's syslog tag and the prefix of its messages on stderr.
HOOK_TAG = "oci-multihome-hook"
_LOCKS = Path("/run/oci-multihome-hook-lab")
SLOTS = 60
# nc and echo: the TCP listener of testlab/shapes.py (`nc -ll -p PORT -e echo ok`).
BUSYBOX_APPLETS = ("sh", "ip", "ping", "sleep", "cat", "ls", "true", "nc", "echo")

# OCI runtimes and network backends a lab's podman can use (Podman.variant).
RUNTIMES = ("runc", "crun")
BACKENDS = ("netavark", "cni")
CNI_LEASES = Path("/var/lib/cni/networks")

_CONTAINERS_CONF = """\
[network]
network_backend = "{backend}"

[engine]
runtime = "{runtime}"
cgroup_manager = "cgroupfs"
events_logger = "file"
helper_binaries_dir = ["/usr/lib/podman", "/usr/libexec/podman"]

[engine.runtimes]
crun = [{crun}]

[containers]
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]
annotations = {annotations}
{no_controllers}"""
# Where podman's cgroup2 has no controllers (a root lab's, testlab/rootlab.py,
# on a host that keeps them on cgroup v1): no pids limit to set, and no
# cgroup of conmon's own (podman 4.3 warns on every run that it cannot
# enable one there). crun gets no cgroup at all: crun 1.8 (Debian 12)
# cannot load its device filter here (bpf() is refused, and raising
# RLIMIT_MEMLOCK to retry needs CAP_SYS_RESOURCE, which this machine's root
# lacks); runc cannot run without one.
_NO_CONTROLLERS = """\
pids_limit = 0
cgroups = "{cgroups}"
"""


def _without_controllers() -> bool:
    controllers = Path("/sys/fs/cgroup/cgroup.controllers")
    return controllers.exists() and not controllers.read_text().split()

# podman's "crun": Debian 12's crun 1.8 refuses a hybrid cgroup layout (v1
# controllers, cgroup2 on /sys/fs/cgroup/unified), so it runs in a mount
# namespace of its own without the cgroup2 mount (crun's state stays in the
# host's /run/crun). While a test listens on DIR/log (Podman.journal), /dev
# there is a tmpfs of links to the host's /dev, /dev/log leading to DIR/log:
# what the hooks crun runs send to syslog reaches the test (this machine has
# no syslog daemon; where one runs, it is left alone).
_CRUN_WRAPPER = """\
#!/bin/sh
exec unshare --mount --propagation private sh -c '
umount /sys/fs/cgroup/unified 2>/dev/null
if [ -S "$0/log" ]; then
    mount --rbind /dev "$0/dev" && mount -t tmpfs -o mode=755 tmpfs /dev &&
        ln -s "$0"/dev/* /dev/ && ln -sfn "$0/log" /dev/log || exit 125
fi
exec /usr/bin/crun "$@"' {dir} "$@"
"""


# Lab-only hook, in a podman 5 lab's hooks dirs (Podman.hooks_dir): undoes
# netavark >= 1.11's rp_filter=2 on bridge veths, which makes a container on
# two bridges lose nothing: the failing condition podman 4 and every
# macvlan/ipvlan network have. `all`, `default` and every interface of the
# container's namespace to 1; a container in the runtime's own namespace
# (--network host) is the host's, and left alone.
_UNDO_LOOSE_BRIDGES = r"""
pid=$(sed -n 's/.*"pid": *\([0-9][0-9]*\).*/\1/p')
[ -n "$pid" ] || { echo "lab rp_filter hook: no pid in the state" >&2; exit 1; }
[ "$(readlink /proc/$pid/ns/net)" != "$(readlink /proc/self/ns/net)" ] || exit 0
exec nsenter -t "$pid" -n sh -ec \
    'for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 1 > "$f"; done'
"""
_UNDO_LOOSE_BRIDGES_JSON = {
    "version": "1.0.0",
    "hook": {"path": "/bin/sh", "args": ["sh", "-c", _UNDO_LOOSE_BRIDGES],
             "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "timeout": 10},
    "when": {"always": True},
    "stages": ["createRuntime"],
}
# Before the project's JSON: podman runs a stage's hooks in file-name order.
_UNDO_LOOSE_BRIDGES_NAME = "00-lab-undo-netavark-loose-bridges.json"


_counter = itertools.count(1)
# For make and apt-get: they may install packages, and wait up to 10
# minutes for the dpkg lock of another apt (tests run side by side).
APT_TIMEOUT = 1200


def run(*argv: str, check: bool = True, env: dict[str, str] | None = None,
        stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output; raise with stderr shown on failure."""
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, input=stdin,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} -> {proc.returncode}: {proc.stderr.strip()}")
    return proc


@functools.cache
def podman_major() -> int:
    """The major version of the podman on PATH: 4 (Debian 12, netavark 1.4,
    CNI too) or 5 (Debian 13, netavark >= 1.11, no CNI)."""
    version = run("podman", "version", "--format", "{{.Client.Version}}").stdout.strip()
    return int(version.split(".")[0])


def hook_binary() -> Path:
    """The hook under test: the venv's console script unless overridden."""
    return Path(os.environ.get("MULTIHOME_HOOK_BIN", REPO / ".venv" / "bin" / "oci-multihome-hook"))


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


class InNetns:
    """What the tests read and measure in a container's network namespace,
    the same for both labs (this one and testlab/rootlab.py): each says how
    to run a command there (`ns`), in its far host's namespace (`far`), and
    in the container itself (`start`)."""

    far_host: str
    far_host6: str
    python: str = "python3"  # an interpreter for the far host's side

    def ns(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        raise NotImplementedError

    def far(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
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
        target itself, and each unanswered request holds ping for seconds)."""
        target = target or self.far_host
        age = " ".join(f"{fam}/neigh/{dev}/{key}"
                       for dev in self.interfaces() for fam in ("ipv4", "ipv6")
                       for key in ("base_reachable_time_ms=100", "delay_first_probe_time=1"))
        bind_arg = f"-I {bind}" if bind else ""
        if deadline is not None:
            bind_arg += f" -w {deadline}"
        proc = self.ns("sh", "-c", f"""
            for kv in {age}; do echo "${{kv#*=}}" > "/proc/sys/net/${{kv%%=*}}"; done
            exec ping -n -q -c {count} -i {interval} -W {wait} {bind_arg} {target}""", check=False)
        return ping_loss(proc, target)


@dataclass
class Container(InNetns):
    podman: Podman
    name: str
    pid: int

    def __post_init__(self) -> None:
        self.far_host, self.far_host6 = self.podman.slot.far_host, self.podman.slot.far_host6
        self.python = sys.executable  # the host's python3 may be a pyenv shim

    def ns(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a host binary inside the container's network namespace only."""
        return run("nsenter", "-t", str(self.pid), "-n", *argv, check=check)

    def far(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run("ip", "netns", "exec", self.podman.slot.far_ns, *argv, check=check)

    def start(self, *argv: str) -> None:
        self.podman("exec", "-d", self.name, *argv)


def ping_loss(proc: subprocess.CompletedProcess[str], target: str) -> float:
    """The % of pings lost, from a finished iputils ping's summary."""
    match = re.search(r"([\d.]+)% packet loss", proc.stdout)
    if match:
        return float(match.group(1))
    if "unreachable" in proc.stderr:  # not even sent: no route that way
        return 100.0
    raise RuntimeError(f"ping {target}: no summary: {proc.stdout!r} {proc.stderr!r}")


class Podman:
    """podman with a private containers.conf and a busybox rootfs, in a lab
    whose addresses are `slot`'s; its OCI runtime and network backend are
    `runtime` (RUNTIMES) and `backend` (BACKENDS)."""

    def __init__(self, workdir: Path, slot: Slot, annotations: Sequence[str] = (), *,
                 runtime: str = "runc", backend: str = "netavark") -> None:
        if runtime not in RUNTIMES or backend not in BACKENDS:
            raise ValueError(f"runtime {runtime!r} or backend {backend!r} unknown")
        self.workdir, self.slot = workdir, slot
        self.annotations, self.runtime, self.backend = tuple(annotations), runtime, backend
        self.conf = workdir / f"containers-{next(_counter)}.conf"
        crun = workdir / "crun.d"
        if not crun.exists():
            (crun / "dev").mkdir(parents=True)
            (crun / "crun").write_text(_CRUN_WRAPPER.format(dir=crun))
            (crun / "crun").chmod(0o755)
        # Without CAP_SYS_RESOURCE runc cannot raise a limit, and podman's
        # defaults (1048576) are above this machine's hard limits.
        self.conf.write_text(_CONTAINERS_CONF.format(
            backend=backend, runtime=runtime, crun=json.dumps(str(crun / "crun")),
            nofile=min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 20000),
            nproc=min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 4096),
            annotations=json.dumps(list(annotations)),
            no_controllers=_NO_CONTROLLERS.format(
                cgroups="disabled" if runtime == "crun" else "no-conmon")
            if _without_controllers() else ""))
        self.rootfs = workdir / "rootfs"
        if not self.rootfs.exists():
            bindir = self.rootfs / "bin"
            bindir.mkdir(parents=True)
            shutil.copy2("/bin/busybox", bindir / "busybox")
            for applet in BUSYBOX_APPLETS:
                (bindir / applet).symlink_to("busybox")
        self.env = dict(os.environ, CONTAINERS_CONF=str(self.conf))

    def variant(self, *, runtime: str | None = None, backend: str | None = None) -> Podman:
        """This lab's podman (same workdir, slot, rootfs, far host and default
        annotations) with another OCI runtime and/or network backend.

        Networks belong to a backend: make them with the variant that uses
        them (`networks(variant, ...)`). Two networks on one subnet route it
        twice on the host: a CNI network needs a subnet that no netavark
        network of the lab holds meanwhile, and the other way round."""
        return Podman(self.workdir, self.slot, self.annotations,
                      runtime=runtime or self.runtime, backend=backend or self.backend)

    def with_default_annotations(self, *annotations: str) -> Podman:
        """The same lab with containers.conf `annotations = [...]`: what an admin
        writes to give every container of the host an annotation."""
        return Podman(self.workdir, self.slot, annotations, runtime=self.runtime,
                      backend=self.backend)

    @contextlib.contextmanager
    def journal(self) -> Iterator[Journal]:
        """What the hooks run by crun send to syslog meanwhile (runc's hooks
        log to the host's /dev/log, which this machine does not have)."""
        with listening(self.workdir / "crun.d" / "log") as log:
            yield log

    def refuse(self, argv: Sequence[str], message: str,
               code: int | None = None) -> subprocess.CompletedProcess[str]:
        """`podman argv`, which the hook must refuse with `message` (and exit
        status `code`, when given), checked where a user of this runtime reads
        them: runc passes the hook's status and stderr on to podman's; crun
        drops the stderr and says only `error executing hook PATH (exit code:
        N)`, so its user reads the journal."""
        with self.journal() as log:
            proc = self(*argv, check=False)
            logged = log.lines(HOOK_TAG)
        assert proc.returncode != 0, f"podman {' '.join(argv)} started: {proc.stderr}"
        if self.runtime == "crun":
            status = r"[1-9]\d*" if code is None else str(code)
            assert re.search(rf"crun: error executing hook `[^`]+` \(exit code: {status}\)",
                             proc.stderr), proc.stderr
            assert message not in proc.stderr, proc.stderr
            assert any(message in line for line in logged), (message, logged)
        else:
            assert f"{HOOK_TAG}: " in proc.stderr and message in proc.stderr, proc.stderr
            assert code is None or f"exit status {code}" in proc.stderr, proc.stderr
        return proc

    def __call__(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run("podman", *argv, check=check, env=self.env)

    def rootfs_owned_by(self, uid: int) -> Path:
        """A copy of the rootfs that a container root mapped to host `uid`
        (--uidmap 0:UID:N) can set up."""
        copy = self.workdir / f"rootfs-{uid}"
        if not copy.exists():
            run("cp", "-a", str(self.rootfs), str(copy))
            # Mount points podman binds files onto: the container's root must
            # be able to open them.
            (copy / "etc").mkdir(exist_ok=True)
            for name in ("hostname", "hosts", "resolv.conf"):
                (copy / "etc" / name).touch()
            run("chown", "-R", f"{uid}:{uid}", str(copy))
        return copy

    def hooks_dir(self, mode_regex: str | None = None, path: Path | None = None, *,
                  podmans_own_rp_filter: bool = False) -> Path:
        """A hooks dir holding the project's own JSON, only `path` changed
        (to the hook under test, unless given). With podman 5 (netavark >=
        1.11 loosens its bridges) also the lab's hook that makes them strict
        again, unless `podmans_own_rp_filter` (the demo shows podman's own,
        the benchmark times the project's hook alone)."""
        spec = json.loads(HOOK_JSON.read_text())
        spec["hook"]["path"] = str(path or hook_binary())
        if mode_regex is not None:
            spec["when"]["annotations"] = {"^io\\.multihome\\.mode$": mode_regex}
        hooks = Path(tempfile.mkdtemp(prefix="hooks.", dir=self.workdir))
        hooks.chmod(0o755)  # rootless podman reads it too
        (hooks / "oci-multihome-hook.json").write_text(json.dumps(spec))
        if podman_major() >= 5 and not podmans_own_rp_filter:
            (hooks / _UNDO_LOOSE_BRIDGES_NAME).write_text(json.dumps(_UNDO_LOOSE_BRIDGES_JSON))
        # `--hooks-dir` replaces podman's default dirs: a lab that needs its
        # own hooks there (the podman 5 lab's strict rp_filter) names them.
        for extra in filter(None, os.environ.get("MULTIHOME_LAB_HOOKS", "").split(":")):
            shutil.copy(extra, hooks / Path(extra).name)
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
                  hooks: Path | None = None, extra: Sequence[str] = (),
                  rootfs: Path | None = None) -> Iterator[Container]:
        """A detached container running `sleep`; removed on exit."""
        name = f"mhtest-{os.getpid()}-{next(_counter)}"
        argv = self.run_argv(networks, annotations or {}, hooks, ["-d", "--name", name, *extra],
                             rootfs)
        try:
            self(*argv, "sleep", "600")
            pid = int(self("inspect", "-f", "{{.State.Pid}}", name).stdout)
            yield Container(self, name, pid)
        finally:
            self("rm", "-f", "-t", "0", name, check=False)




class Watch:
    """`oci-multihome-hook watch`, running, with its output read as it comes.
    `argv` runs it (a command line that ends up in `oci-multihome-hook
    watch`, e.g. through nsenter into the podman 5 lab)."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        # A process group of its own, for stop(): nsenter -p forks the watch
        # and does not pass SIGTERM on to it.
        self.proc = subprocess.Popen(argv, env=env, text=True, start_new_session=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        time.sleep(1)  # `podman events` listens only once started

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, *parts: str, timeout: float = 15) -> str:
        """The next line holding every one of `parts` (earlier ones are kept in `seen`)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"watch printed no line with {parts}: {self.seen}") from None
            self.seen.append(line)
            if all(part in line for part in parts):
                return line

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM to the group; back once every process of it has ended."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"watch (process group {self.proc.pid}) did not stop")
            time.sleep(0.05)


@contextlib.contextmanager
def watching(podman: Podman) -> Iterator[Watch]:
    """The hook under test's `watch`, for this lab's podman."""
    with watch_running([str(hook_binary()), "watch"], podman.env) as watch:
        yield watch


@contextlib.contextmanager
def watch_running(argv: Sequence[str], env: dict[str, str] | None = None) -> Iterator[Watch]:
    watch = Watch(argv, env)
    try:
        yield watch
    finally:
        watch.stop()


@contextlib.contextmanager
def podman_env() -> Iterator[Podman]:
    """The lab: a slot of addresses, strict host rp_filter defaults, the far
    host, and podman configured for this machine."""
    with claim_slot() as slot, host_sysctls(STRICT_RP_FILTER), far_host(slot), \
            tempfile.TemporaryDirectory(prefix="multihome-lab.") as tmp:
        # Read by other uids too: a container's root in a user namespace of
        # its own (--uidmap), rootless podman.
        Path(tmp).chmod(0o755)
        yield Podman(Path(tmp), slot)


@contextlib.contextmanager
def networks(podman: Podman, subnets: Sequence[str], ipv6: Sequence[str | None] = (),
             prefix: str = "mhtest",
             options: Sequence[Sequence[str]] = ()) -> Iterator[list[str]]:
    """Podman networks of podman's backend on the given subnets (optionally
    dual-stack; with more `network create` options each, e.g. a driver).
    CNI's are the host's (/etc/cni/net.d, where the hook looks a network's
    name up): podman removes their files, the lab the address leases CNI
    keeps of them (/var/lib/cni/networks/NAME)."""
    names: list[str] = []
    # A name of each backend's own: the hook reads both backends' definitions.
    kind = "c" if podman.backend == "cni" else "n"
    try:
        for i, subnet in enumerate(subnets):
            name = f"{prefix}{os.getpid()}{kind}{i}"
            argv = ["network", "create", "--subnet", subnet]
            v6 = ipv6[i] if i < len(ipv6) else None
            if v6:
                argv += ["--ipv6", "--subnet", v6]
            if i < len(options):
                argv += options[i]
            podman(*argv, name)
            names.append(name)
        yield names
    finally:
        for name in names:
            podman("network", "rm", "-f", name, check=False)
            if podman.backend == "cni":
                shutil.rmtree(CNI_LEASES / name, ignore_errors=True)


@contextlib.contextmanager
def macvlan_network(podman: Podman, network: int) -> Iterator[str]:
    """A podman macvlan network on the slot's subnet `network`, inside
    far_host(), its parent an l2_segment whose far end holds the gateway."""
    slot = podman.slot
    name = f"mhtest{os.getpid()}mv{network}"
    with l2_segment(slot, "mv", f"{slot.gateway(network)}/24") as parent:
        podman("network", "create", "--driver", "macvlan", "--opt", f"parent={parent}",
               "--subnet", slot.subnet(network), "--gateway", slot.gateway(network), name)
        try:
            yield name
        finally:
            podman("network", "rm", "-f", name, check=False)


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
