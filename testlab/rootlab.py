"""A root lab: one podman stack (testlab/roots.py) in namespaces of its own,
with the project's deb installed by apt.

- `running(stack, deb, binds)` starts a lab: new network, mount, pid,
  cgroup, uts and ipc namespaces; an overlay over the stack's cached root
  with a tmpfs upper layer (the cache stays pristine, nothing survives a
  run); proc, a fresh sysfs, cgroup2, a tmpfs /dev with device binds, tmpfs
  /run and /tmp; `binds`, host directories seen read-only at their own
  paths; pivot_root.
  Inside its network namespace: rp_filter all/default 1, forwarding, the
  far host and podman networks of testlab/labnet.py, and the lab's one
  rp_filter hook (lab_rp_filter.py, its policy an argument of `running`).
  The deb (testlab/debs.py) is installed with apt-get, so the hook runs
  from podman's default hook dirs on the stack's python3, pyroute2 and
  pydantic.
- `Lab.run` enters the lab's namespaces with nsenter by the pid of its init,
  after moving itself into the lab's cgroup (testlab/cgroups.py): everything
  a test starts there is in that cgroup, and killing it ends it all at the
  end, containers included. The namespaces and mounts go with their last process.
- `here()` is the lab this process runs in (`make test-venv`'s pytest,
  the demo, the benchmark): the same `Lab`, its commands run directly.
- `Lab.using(...)` is the lab's podman with another runtime, network
  backend, hooks dir (`Lab.hooks_dir`: the project's JSON pointing at the
  hook under test) or containers.conf annotations; `Lab.container` a
  container of it, removed again even when the body fails.

Nothing is created in the host's network namespace, and the host's podman,
routes and sysctls are never touched. Run as root.

    python -m testlab.rootlab run [--stack NAME] [--deb [DEB]] [--bind DIR]... -- CMD...
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import hashlib
import itertools
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from . import cgroups, commands, debs, labnet, settings
from .roots import RootError, Stack, remove_tree, selected

REPO = commands.REPO
FILES = Path(__file__).resolve().parent / "rootlab_files"
ROOTFS = "/srv/rootfs"  # the containers' busybox, inside the lab
HOOK_JSON = REPO / "oci-hooks.d" / "oci-multihome-hook.json"
# The hook's syslog tag and the prefix of its messages on stderr.
HOOK_TAG = "oci-multihome-hook"
# The environment of every command in the lab: the lab's, not the caller's
# (no CONTAINERS_CONF, VIRTUAL_ENV or the like from the host's shell).
LAB_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": "/root", "LC_ALL": "C.UTF-8"}
# The lab's rp_filter hook (lab_rp_filter.py): in podman's default hooks
# dir, and copied into every hooks dir a test makes (`--hooks-dir` replaces
# the default dirs). Podman 5.4 and later read only this directory by
# default (4.3 also /etc/containers/oci/hooks.d); podman runs the hooks of a
# stage in file-name order: this one before the project's.
RP_FILTER_HOOK = "/usr/share/containers/oci/hooks.d/00-mhlab-rp-filter.json"
RpFilterPolicy = Literal["keep-podmans", "strict"]


# Podman in a root where neither systemd nor journald runs (systemd is
# installed, for running(systemd=True) only), on this machine's cgroup2
# (which has no pids controller on a hybrid host).
_CONTAINERS_CONF = """\
[containers]
pids_limit = 0
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
# The lab's /var/lib/containers is on an overlayfs, which podman's overlay
# driver refuses as a backing file system; with --rootfs nothing is stored.
_STORAGE_CONF = """\
[storage]
driver = "vfs"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
"""
_RP_FILTER_HOOK = {
    "version": "1.0.0",
    "hook": {"path": "/usr/bin/python3",
             "args": ["python3", "-I", "/usr/local/libexec/mhlab-rp-filter", "POLICY",
                      "--record", "/run/mhlab/rp_filter"],
             "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
             "timeout": 10},
    "when": {"always": True},
    "stages": ["createRuntime"],
}

# /run/mhlab/rp_filter: where the lab's rp_filter hook records what it
# found, also when rootless podman runs it as a user.
_BASE_SETUP = """\
set -eu
echo mhlab > /proc/sys/kernel/hostname
ip link set lo up
mkdir -p -m 1777 /run/mhlab/rp_filter
"""

# A RHEL-like host (Stack.rhel): RHEL's sysctl.d lines for rp_filter, and
# systemd-udevd running systemd-sysctl for every new network interface, as
# systemd's 99-systemd.rules does on RHEL; netavark's rp_filter 2 on its
# bridges is undone (netavark PR #1245, podman #26044). Only that rule: the
# lab's network namespace receives the machine's other uevents too, and
# nothing but the lab's interfaces is udev's here (the rules live in the
# overlay's upper layer).
_RHEL_HOST = """\
set -eu
cat > /etc/sysctl.d/50-redhat.conf <<'SYSCTL'
net.ipv4.conf.default.rp_filter = 1
net.ipv4.conf.*.rp_filter = 1
net.ipv4.conf.all.rp_filter = 1
SYSCTL
rules=/usr/lib/udev/rules.d
grep -h 'SUBSYSTEM=="net".*systemd-sysctl' $rules/99-systemd.rules > /run/mhlab/net.rules
rm -f $rules/*.rules /etc/udev/rules.d/*.rules
mv /run/mhlab/net.rules $rules/99-systemd.rules
/usr/lib/systemd/systemd-udevd --daemon --resolve-names=never
# The daemon's control socket comes a moment after it forks (systemd 262:
# "Failed to connect to udev via varlink" until then).
i=0
until udevadm control --ping --timeout=10 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 100 ] || udevadm control --ping --timeout=10; sleep 0.1
done
"""

_counter = itertools.count(1)
_SYSLOG_MARK = "mhlab-syslog-mark."


class LabError(RuntimeError):
    """The lab could not be made; the message says why."""


# --- a running lab -----------------------------------------------------------


def _remove_stale(cgroup2: Path) -> None:
    """What a lab whose test process was killed left behind: its cgroup (the
    processes died with it: see _die_with_parent) and its work directory."""
    for path in [*cgroup2.glob("oci-multihome-lab.*"), *Path("/var/tmp").glob("mhlab5.*")]:
        try:
            pid = int(path.name.split(".")[1])
        except (IndexError, ValueError):
            continue
        if cgroups.pid_alive(pid):
            continue
        if path.is_relative_to(cgroup2):
            cgroups.kill(path)
            cgroups.remove(path)
        else:
            remove_tree(path)


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL it when the test process dies, even
    by SIGKILL. unshare keeps it across exec and --kill-child passes it on to
    the lab's init, whose death ends every process of the lab."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@dataclass
class Lab:
    stack: Stack
    pid: int      # the lab's init, as the host sees it; 0: this process is in the lab
    cgroup: Path  # its cgroup, on the host's cgroup2 (the root of its cgroup namespace)
    apt_output: str = ""
    # The lab's podman as a test uses it (Lab.using).
    runtime: str = "crun"
    backend: str = "netavark"  # or "cni" (podman 4 only)
    annotations: tuple[str, ...] = ()  # containers.conf's: for every container
    hooks: Path | None = None  # --hooks-dir of run_argv; None: podman's default dirs

    @property
    def procs(self) -> Path:
        """Where the lab's own processes go: the leaf /init (setup.sh)."""
        return self.cgroup / "init" / "cgroup.procs"

    @property
    def env(self) -> dict[str, str]:
        """The environment of every command run in the lab."""
        return {**LAB_ENV, settings.LAB_STACK: self.stack.name}

    def command(self, *argv: str) -> list[str]:
        """A host command line that runs `argv` of the lab's root inside the
        lab, as root (with env=self.env)."""
        if not self.pid:
            return list(argv)
        # First into the lab's cgroup (a plain `nsenter -C` would only change
        # the view), then every namespace of the lab's init, its root and cwd.
        return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.procs),
                "nsenter", "-t", str(self.pid), "-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w",
                "--", *argv]

    def run(self, *argv: str, check: bool = True, stdin: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a command of the lab's root inside the lab, as root."""
        proc = subprocess.run(self.command(*argv), capture_output=True, text=True, input=stdin,
                              timeout=timeout, env=self.env)
        if check and proc.returncode != 0:
            raise LabError(f"in the lab: {' '.join(argv)} -> {proc.returncode}: "
                           f"{proc.stderr.strip()}")
        return proc

    def sh(self, script: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("sh", "-c", script, check=check)

    def path(self, inside: str) -> Path:
        """A file of the lab, read from the host through its init's root."""
        return Path(f"/proc/{self.pid}/root") / inside.lstrip("/") if self.pid else Path(inside)

    def settle(self) -> None:
        """Until udev has handled every event so far (a RHEL-like host's
        sysctls of new interfaces); nothing to wait for elsewhere."""
        if self.stack.rhel:
            self.run("udevadm", "settle", "--timeout=10")

    def syslog(self, timeout: float = 10) -> list[str]:
        """Every syslog message sent in the lab so far. The lab's init
        writes them as they come (lab_init.py): a mark of this call's is
        sent and waited for, so that all sent before it is written (the
        socket keeps their order)."""
        mark = f"{_SYSLOG_MARK}{os.getpid()}.{next(_counter)}"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(mark.encode(), str(self.path("/dev/log")))
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(FileNotFoundError):
                lines = self.path("/run/mhlab/syslog").read_text(errors="replace").splitlines()
                if mark in lines:
                    return [line for line in lines if not line.startswith(_SYSLOG_MARK)]
            if time.monotonic() > deadline:
                raise LabError(f"the lab's syslog did not show {mark} in {timeout:.0f} s")
            time.sleep(0.01)

    def messages(self, since: int = 0, tag: str = HOOK_TAG) -> list[str]:
        """The messages logged under `tag` after the first `since` lines of
        syslog(), without the header ("<PRI>TIMESTAMP TAG[PID]: ")."""
        return [line.split("]: ", 1)[1] for line in self.syslog()[since:]
                if f" {tag}[" in line.split("]: ", 1)[0] + "]"]

    # --- podman ---------------------------------------------------------------

    def using(self, *, runtime: str | None = None, backend: str | None = None,
              hooks: Path | None = None, annotations: Sequence[str] | None = None) -> Lab:
        """This lab's podman with another OCI runtime, network backend (a
        network belongs to one: make it with the podman that uses it),
        hooks dir, or containers.conf `annotations = [...]` (what an admin
        writes to give every container of the host an annotation)."""
        return dataclasses.replace(
            self, runtime=runtime or self.runtime, backend=backend or self.backend,
            hooks=hooks or self.hooks,
            annotations=self.annotations if annotations is None else tuple(annotations))

    def podman(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(*self.podman_argv(*argv), check=check)

    def podman_argv(self, *argv: str) -> list[str]:
        """The command line of `podman argv` with this lab's settings."""
        head = ["podman"]
        if self.backend != "netavark":
            head += ["--network-backend", self.backend]
        if self.annotations:
            head = ["env", f"CONTAINERS_CONF={self._conf_with_annotations()}", *head]
        return [*head, *argv]

    def _conf_with_annotations(self) -> str:
        """The lab's containers.conf with self.annotations, as a file of its own."""
        conf = self.path("/etc/containers/containers.conf").read_text().replace(
            "[containers]\n", f"[containers]\nannotations = {json.dumps(self.annotations)}\n")
        name = f"/run/mhlab/containers-{hashlib.sha256(conf.encode()).hexdigest()[:12]}.conf"
        if not self.path(name).exists():
            self.path(name).write_text(conf)
        return name

    def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """The hook under test's CLI (settings.hook_binary()), in the lab."""
        return self.run(str(settings.hook_binary()), *argv, check=False)

    def hooks_dir(self, path: Path | None = None) -> Path:
        """A hooks dir in the lab holding the project's own JSON, only `path`
        changed (to the hook under test, unless given), and the lab's
        rp_filter hook."""
        spec = json.loads(HOOK_JSON.read_text())
        spec["hook"]["path"] = str(path or settings.hook_binary())
        hooks = f"/run/mhlab/hooks.{next(_counter)}"
        made = self.path(hooks)
        made.mkdir(mode=0o755)  # rootless podman reads it too
        (made / HOOK_JSON.name).write_text(json.dumps(spec))
        shutil.copy(self.path(RP_FILTER_HOOK), made)
        return Path(hooks)

    def run_argv(self, networks: Sequence[str], annotations: dict[str, str] | None = None,
                 runtime: str | None = None, extra: Sequence[str] = (),
                 rootfs: str = ROOTFS, verb: str = "run") -> list[str]:
        """`podman` arguments of a `run` (or `create`) up to and including the
        rootfs. A network may carry options: `mh5a:interface_name=eth0`."""
        runtime = runtime or self.runtime
        argv = [] if self.hooks is None else ["--hooks-dir", str(self.hooks)]
        argv += ["--runtime", runtime, verb, "--cap-add", "NET_RAW", *extra]
        if self.stack.podman == 4:
            # Debian 12's crun 1.8 loads a device filter (bpf(), refused
            # here) unless it has no cgroup; runc needs one.
            argv += ["--cgroups", "disabled" if runtime == "crun" else "no-conmon"]
        for net in networks:
            argv += ["--network", net]
        for key, value in (annotations or {}).items():
            argv += ["--annotation", f"{key}={value}"]
        return [*argv, "--rootfs", rootfs]

    @contextlib.contextmanager
    def container(self, networks: Sequence[str], annotations: dict[str, str] | None = None,
                  runtime: str | None = None, extra: Sequence[str] = (),
                  rootfs: str = ROOTFS) -> Iterator[Container]:
        """A detached container running `sleep`; removed on exit."""
        name = f"mh5-{next(_counter)}"
        argv = self.run_argv(networks, annotations, runtime, ["-d", "--name", name, *extra],
                             rootfs)
        try:
            self.podman(*argv, "sleep", "600")
            cid, pid = self.podman("inspect", "-f", "{{.Id}} {{.State.Pid}}",
                                   name).stdout.split()
            yield Container(self, name, cid, int(pid), runtime or self.runtime)
        finally:
            self.podman("rm", "-f", "-t", "0", name, check=False)

    def refuse(self, argv: Sequence[str], message: str,
               code: int | None = None) -> subprocess.CompletedProcess[str]:
        """`podman argv`, which the hook must refuse with `message` (and exit
        status `code`, when given), checked where a user of this runtime reads
        them: runc passes the hook's status and stderr on to podman's; crun
        drops the stderr and says only `error executing hook PATH (exit code:
        N)`, so its user reads the journal."""
        before = len(self.syslog())
        proc = self.podman(*argv, check=False)
        logged = self.messages(before)
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

    def rootfs_owned_by(self, uid: int) -> str:
        """A copy of the rootfs that a container root mapped to host `uid`
        (--uidmap 0:UID:N) can set up."""
        copy = f"{ROOTFS}-{uid}"
        if not self.path(copy).exists():
            # Mount points podman binds files onto: the container's root must
            # be able to open them.
            self.sh(f"cp -a {ROOTFS} {copy} && mkdir -p {copy}/etc && "
                    f"touch {copy}/etc/hostname {copy}/etc/hosts {copy}/etc/resolv.conf && "
                    f"chown -R {uid}:{uid} {copy}")
        return copy

    def view(self) -> dict[str, str]:
        """The lab's namespace as a hook could have changed it: its rules,
        the routes of the hook's protocols (17x) in every table, and each
        conf's rp_filter."""
        routes = self.sh("ip route show table all; ip -6 route show table all").stdout
        filters = _rp_filters(self.sh(_READ_RP_FILTERS).stdout)
        return {"rules": self.sh("ip rule; ip -6 rule").stdout,
                "routes": "".join(line for line in routes.splitlines(True) if " proto 17" in line),
                **{f"{conf} rp_filter": str(value) for conf, value in filters.items()}}

    def changes(self, before: dict[str, str]) -> list[str]:
        """What differs from `before` now (of the interfaces in both), and
        any route of the hook's protocols, before or after: [] when untouched."""
        after = self.view()
        return [f"{key}: {before[key]!r} -> {after[key]!r}"
                for key in sorted(before.keys() & after.keys() - {"routes"})
                if before[key] != after[key]] + \
            [f"routes of the hook's: {routes!r}"
             for routes in dict.fromkeys((before["routes"], after["routes"])) if routes]

    def wait_booted(self, log: Path, timeout: float = 120) -> str:
        """Once systemd, the lab's init (running(systemd=True)), has started
        every unit it starts at boot: its state, `running`, or `degraded`
        when a unit failed (what failed is in the message of a later
        assertion, from `systemctl --failed`). Anything else is an error."""
        deadline = time.monotonic() + timeout
        while True:
            # Before systemd listens, systemctl cannot connect: try again.
            proc = self.run("systemctl", "is-system-running", "--wait", check=False,
                            timeout=timeout)
            state = proc.stdout.strip()
            if state in ("running", "degraded"):
                return state
            if state not in ("", "offline", "initializing", "starting") or \
                    time.monotonic() > deadline:
                raise LabError(f"systemd in the lab: {state or proc.stderr.strip()}\n"
                               f"{log.read_text(errors='replace').strip()}")
            time.sleep(0.2)

    def _setup(self, deb: str | None) -> None:
        self.sh(_BASE_SETUP + labnet.setup_script(ROOTFS))
        if self.stack.rhel:
            self.sh(_RHEL_HOST)
        for net in labnet.NETWORKS:
            if net.driver in self.stack.drivers:
                self.podman(*net.create_argv())
        if deb is None:
            return
        # The deb as a user installs it: its dependencies are the root's
        # python3-pyroute2 and python3-pydantic (the lab has no route out, and
        # the root no package lists: nothing can be downloaded).
        proc = self.sh(f"cd /var/tmp/mhlab && DEBIAN_FRONTEND=noninteractive "
                       f"apt-get install -y ./{deb} 2>&1", check=False)
        self.apt_output = proc.stdout
        if proc.returncode != 0:
            raise LabError(f"apt-get install ./{deb} in the lab failed:\n{proc.stdout}")


@dataclass
class Container:
    """A container of the lab seen from inside: its routes, sysctls and
    interfaces as the kernel has them, and what the tests measure there."""

    lab: Lab
    name: str
    id: str
    pid: int  # in the lab's pid namespace
    runtime: str
    far_host: str = labnet.FAR_HOST
    far_host6: str = labnet.FAR_HOST6

    def ns(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A command of the lab's root in the container's network namespace."""
        return self.lab.run("nsenter", "-t", str(self.pid), "-n", *argv, check=check)

    def far(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.lab.run("ip", "netns", "exec", "far", *argv, check=check)

    def host(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.lab.run(*argv, check=check)

    def start(self, *argv: str) -> None:
        """A process in the container, detached: it ends with the container."""
        self.lab.podman("exec", "-d", self.name, *argv)

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

    def rp_filter(self) -> dict[str, int]:
        """rp_filter of all, default and every interface, as they are now."""
        return _rp_filters(self.ns("sh", "-c", _READ_RP_FILTERS).stdout)

    def rp_filter_at_creation(self) -> dict[str, int]:
        """What the lab's hook found (netavark's values, before any hook's)."""
        found: dict[str, int] = json.loads(
            self.lab.path(f"/run/mhlab/rp_filter/{self.id}.json").read_text())
        return found


# Every conf's rp_filter, as "/proc/sys/net/ipv4/conf/NAME/rp_filter:VALUE" lines.
_READ_RP_FILTERS = "grep -r . /proc/sys/net/ipv4/conf/*/rp_filter"


def _rp_filters(out: str) -> dict[str, int]:
    """_READ_RP_FILTERS' output: conf -> rp_filter."""
    return {line.split("/")[-2]: int(line.rsplit(":", 1)[1]) for line in out.split()}


def ping_loss(proc: subprocess.CompletedProcess[str], target: str) -> float:
    """The % of pings lost, from a finished iputils ping's summary."""
    match = re.search(r"([\d.]+)% packet loss", proc.stdout)
    if match:
        return float(match.group(1))
    if "unreachable" in proc.stderr:  # not even sent: no route that way
        return 100.0
    raise RuntimeError(f"ping {target}: no summary: {proc.stdout!r} {proc.stderr!r}")


def _payload(dest: Path, deb: Path | None, rp_filter: RpFilterPolicy) -> Path:
    """Files copied into the lab's root before it starts."""
    hard_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    hard_nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    files = {
        "usr/local/sbin/mhlab-init": (FILES / "lab_init.py").read_text(),
        "usr/local/libexec/mhlab-rp-filter": (FILES.parent / "lab_rp_filter.py").read_text(),
        RP_FILTER_HOOK.lstrip("/"): json.dumps(_RP_FILTER_HOOK, indent=2).replace(
            "POLICY", rp_filter) + "\n",
        # The lab inherits this process's limits; podman's defaults (1048576)
        # are above this machine's hard limits, which runc and crun cannot raise.
        "etc/containers/containers.conf": _CONTAINERS_CONF.format(
            nofile=min(hard_nofile, 20000), nproc=min(hard_nproc, 4096)),
        "etc/containers/storage.conf": _STORAGE_CONF,
    }
    for rel, text in files.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        path.write_text(text)
    debdir = dest / "var/tmp/mhlab"
    debdir.mkdir(parents=True)
    if deb is not None:
        shutil.copy2(deb, debdir / deb.name)
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


def _wait_ready(proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> int:
    """The host pid of the lab's init, once it serves /dev/log."""
    deadline = time.monotonic() + timeout
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    while True:
        code = proc.poll()
        if code is not None:
            raise LabError(f"the lab's set-up exited {code}:\n"
                           f"{log.read_text(errors='replace').strip()}")
        with contextlib.suppress(OSError):
            pids = children.read_text().split()
            # Before pivot_root the init's root is the host's, which has no
            # /run/mhlab: this exists only inside the lab.
            if pids and Path(f"/proc/{pids[0]}/root/run/mhlab/ready").exists():
                return int(pids[0])
        if time.monotonic() > deadline:
            raise LabError(f"the lab did not start in {timeout:.0f} s:\n"
                           f"{log.read_text(errors='replace').strip()}")
        time.sleep(0.05)


@contextlib.contextmanager
def running(stack: Stack, deb: Path | None, binds: Sequence[Path] = (),
            writable: Sequence[Path] = (), rp_filter: RpFilterPolicy = "keep-podmans",
            systemd: bool = False) -> Iterator[Lab]:
    """A lab of `stack` on its cached root (stack.ensure() first), `deb` installed
    unless None; the host's directories `binds` are seen there, read-only, at
    their own paths (e.g. a checkout and its venv's interpreter), and
    `writable` ones writable (where a run leaves its results). `rp_filter`:
    the policy of the lab's rp_filter hook (lab_rp_filter.py): `strict`
    undoes netavark's loosening of bridges, for the suites that assert the
    bug of podman 4 on a later podman. `systemd`:
    the lab's init is the root's systemd, booted (Lab.wait_booted) on a
    read-only /proc/sys and /sys (setup.sh says why), with the lab's cgroup
    its own; no networks, and `deb` is only copied to /var/tmp/mhlab (the
    test installs it, with systemd running)."""
    cgroup2 = cgroups.cgroup2_mount()
    _remove_stale(cgroup2)
    with stack.locked(exclusive=False):
        if not stack.ready():
            raise LabError(f"no complete root at {stack.root}: "
                           f"python -m testlab.roots build {stack.name}")
        # The pid in both names lets a later run find what a killed one left.
        work = Path(tempfile.mkdtemp(prefix=f"mhlab5.{os.getpid()}.", dir="/var/tmp"))
        cgroup = cgroup2 / f"oci-multihome-lab.{os.getpid()}.{work.name.rsplit('.', 1)[1]}"
        proc: subprocess.Popen[bytes] | None = None
        try:
            (work / "mnt").mkdir()
            payload = _payload(work / "payload", deb, rp_filter)
            cgroup.mkdir()
            with (work / "setup.log").open("wb") as log:
                proc = subprocess.Popen(
                    ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(cgroup / "cgroup.procs"),
                     "unshare", "--net", "--mount", "--pid", "--cgroup", "--uts", "--ipc",
                     "--fork", "--kill-child", "--propagation", "private",
                     "sh", str(FILES / "setup.sh"), str(stack.root), str(work / "mnt"),
                     str(payload), *map(str, binds), *(f"+{w}" for w in writable)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env={**LAB_ENV, "MHLAB_INIT": "systemd"} if systemd else LAB_ENV,
                    preexec_fn=_die_with_parent)
            lab = Lab(stack, _wait_ready(proc, work / "setup.log"), cgroup)
            # unshare itself, outside the lab's pid namespace, is the last
            # process in the root of the lab's cgroup namespace: to the leaf.
            lab.procs.write_text(str(proc.pid))
            if systemd:
                lab.wait_booted(work / "setup.log")
            else:
                lab._setup(deb.name if deb else None)
            yield lab
        finally:
            if cgroup.exists():
                cgroups.kill(cgroup)
            if proc is not None:
                proc.kill()
                proc.wait(timeout=30)
            if cgroup.exists():
                cgroups.remove(cgroup)
            # Its mount point only ever had a tmpfs in the lab's mount namespace.
            remove_tree(work)


def here() -> Lab:
    """The lab this process runs in (started by `python -m testlab.rootlab
    run` or `Lab.run`)."""
    name = settings.lab_stack()
    if name is None:
        raise LabError(f"not in a lab (no ${settings.LAB_STACK}): run me with "
                       "python -m testlab.rootlab run")
    (stack,) = selected(name)
    return Lab(stack, 0, Path("/sys/fs/cgroup"))


def interpreter_bind(stack: Stack, venv: Path) -> Path | None:
    """What to bind in for `venv`'s interpreter to run in a lab of `stack`:
    its installation (a pyenv build, /root/.pyenv/versions/X), or nothing
    when it is the root's own (/usr/bin/python3.11 in a Debian 12 lab)."""
    try:
        cfg = (venv / "pyvenv.cfg").read_text()
    except OSError as e:
        raise LabError(f"{venv} is not a venv: {e}") from e
    homes = [line.split("=", 1)[1].strip() for line in cfg.splitlines()
             if line.split("=", 1)[0].strip() == "home"]
    if not homes:
        raise LabError(f"{venv}/pyvenv.cfg names no home")
    executable = Path(homes[0]) / os.readlink(venv / "bin" / "python").rsplit("/", 1)[-1]
    if not executable.is_relative_to("/usr"):
        return Path(homes[0]).parent
    # The lab's /usr is the stack's: the same interpreter must be there.
    if not os.path.lexists(stack.root / executable.relative_to("/")):
        raise LabError(f"{venv} runs {executable}, which the {stack.title} root lacks")
    return None


# --- command line -------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testlab.rootlab",
                                     description="A root lab: one podman stack.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one command in a fresh lab (sh -c if one word); "
                         "its output as it comes, its exit status")
    run.add_argument("--stack", default="podman4", help="default: podman4")
    run.add_argument("--deb", nargs="?", const="newest", metavar="DEB",
                     help=f"install DEB first (alone: the newest dist/{debs.DEB_GLOB})")
    run.add_argument("--bind", type=Path, action="append", default=[], metavar="DIR",
                     help="a host directory seen read-only at its own path (repeatable)")
    run.add_argument("--writable", type=Path, action="append", default=[], metavar="DIR",
                     help="a host directory seen writable at its own path (repeatable)")
    run.add_argument("--venv", type=Path, action="append", default=[], metavar="VENV",
                     help="a venv's interpreter seen at its own path (repeatable; the venv "
                     "itself: --bind its directory)")
    run.add_argument("--timeout", type=float, default=3600, help="seconds (default: 3600)")
    run.add_argument("cmd", nargs="+")
    args = parser.parse_args(argv)
    try:
        (stack,) = selected(args.stack)
        deb = Path(args.deb) if args.deb and args.deb != "newest" else None
        if args.deb == "newest":
            deb = debs.find_deb()
            if deb is None:
                raise LabError(f"no dist/{debs.DEB_GLOB}: make deb")
        stack.ensure()
        for path in args.writable:
            path.mkdir(parents=True, exist_ok=True)
        binds = [p.resolve() for p in args.bind]
        binds += filter(None, (interpreter_bind(stack, venv) for venv in args.venv))
        with running(stack, deb, binds, [p.resolve() for p in args.writable]) as lab:
            cmd = ["sh", "-c", args.cmd[0]] if len(args.cmd) == 1 else args.cmd
            sys.stdout.flush()
            return subprocess.run(lab.command(*cmd), env=lab.env, check=False,
                                  stdin=subprocess.DEVNULL, timeout=args.timeout).returncode
    except (LabError, cgroups.CgroupError, RootError, ValueError, subprocess.TimeoutExpired) as e:
        print(f"testlab.rootlab: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
