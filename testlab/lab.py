"""The podman of a lab, for the podman tests, the demo and the benchmark:
podman with a private containers.conf and a busybox rootfs, runc or crun,
netavark or CNI networks (Podman.variant), hooks dirs holding the
project's own JSON with the hook under test, and containers made and
removed again even when the body fails. Its addresses, far host and
sysctls are testlab/network.py's; what a test reads inside a container,
testlab/inside.py's.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .commands import REPO, run
from .inside import InNetns
from .journal import Journal, listening
from .network import STRICT_RP_FILTER, Slot, claim_slot, far_host, host_sysctls, l2_segment

HOOK_JSON = REPO / "oci-hooks.d" / "oci-multihome-hook.json"
# The hook's syslog tag and the prefix of its messages on stderr.
HOOK_TAG = "oci-multihome-hook"
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


# Lab-only hook (lab_rp_filter.py), in the hooks dirs of a podman 5 or later
# lab (Podman.hooks_dir): undoes netavark >= 1.11's rp_filter=2 on bridge
# veths, which makes a container on two bridges lose nothing: the failing
# condition podman 4 and every macvlan/ipvlan network have.
RP_FILTER_HOOK = Path(__file__).resolve().parent / "lab_rp_filter.py"
_UNDO_LOOSE_BRIDGES_JSON = {
    "version": "1.0.0",
    "hook": {"path": "/usr/bin/python3",
             "args": ["python3", "-I", str(RP_FILTER_HOOK), "strict"],
             "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "timeout": 10},
    "when": {"always": True},
    "stages": ["createRuntime"],
}
# Before the project's JSON: podman runs a stage's hooks in file-name order.
_UNDO_LOOSE_BRIDGES_NAME = "00-lab-undo-netavark-loose-bridges.json"


_counter = itertools.count(1)
@functools.cache
def podman_major() -> int:
    """The major version of the podman on PATH: 4 (Debian 12, netavark 1.4,
    CNI too) or 5 (Debian 13, netavark >= 1.11, no CNI)."""
    version = run("podman", "version", "--format", "{{.Client.Version}}").stdout.strip()
    return int(version.split(".")[0])


def hook_binary() -> Path:
    """The hook under test: the venv's console script unless overridden."""
    return Path(os.environ.get("MULTIHOME_HOOK_BIN", REPO / ".venv" / "bin" / "oci-multihome-hook"))


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

    def host(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(*argv, check=check)

    def start(self, *argv: str) -> None:
        self.podman("exec", "-d", self.name, *argv)


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


