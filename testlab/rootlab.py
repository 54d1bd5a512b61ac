"""A root lab: one podman stack (testlab/roots.py) in namespaces of its own,
with the project's deb installed by apt.

- `running(stack, deb, binds)` starts a lab: new network, mount, pid,
  cgroup, uts and ipc namespaces; an overlay over the stack's cached root
  with a tmpfs upper layer (the cache stays pristine, nothing survives a
  run); proc, a fresh sysfs, cgroup2, a tmpfs /dev with device binds, tmpfs
  /run and /tmp; `binds`, host directories seen read-only at their own
  paths; pivot_root.
  Inside its network namespace: rp_filter all/default 1, forwarding, the
  far host and podman networks of testlab/labnet.py. The deb (testlab/debs.py) is
  installed with apt-get, so the hook runs from podman's default hook dirs
  on the stack's python3, pyroute2 and pydantic.
- `Lab.run` enters the lab's namespaces with nsenter by the pid of its init,
  after moving itself into the lab's cgroup (testlab/cgroups.py): everything
  a test starts there is in that cgroup, and killing it ends it all at the
  end, containers included. The namespaces and mounts go with their last process.

Nothing is created in the host's network namespace, and the host's podman,
routes and sysctls are never touched. Run as root.

    python -m testlab.rootlab run [--stack NAME] [--deb [DEB]] [--bind DIR]... -- CMD...
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import itertools
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import cgroups, commands, debs, inside, labnet
from . import lab as host_lab
from .roots import RootError, Stack, remove_tree, selected

REPO = commands.REPO
FILES = Path(__file__).resolve().parent / "rootlab_files"
ROOTFS = "/srv/rootfs"  # the containers' busybox, inside the lab
BUSYBOX_APPLETS = host_lab.BUSYBOX_APPLETS
# The environment of every command in the lab: the lab's, not the caller's
# (no CONTAINERS_CONF, VIRTUAL_ENV or the like from the host's shell).
# MULTIHOME_LAB_HOOKS: the lab's strict rp_filter hook goes into every
# hooks dir testlab/lab.py makes (`--hooks-dir` replaces podman's default
# dirs), so that a test or the demo run in the lab sees a strict host's
# containers whatever the machine's own rp_filter is.
# Podman 5.4 and later read only this directory by default (4.3 also read
# /etc/containers/oci/hooks.d); podman runs hooks in file-name order.
STRICT_RP_FILTER_HOOK = "/usr/share/containers/oci/hooks.d/00-mhlab-strict-rp-filter.json"
LAB_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": "/root", "LC_ALL": "C.UTF-8", "MULTIHOME_LAB_HOOKS": STRICT_RP_FILTER_HOOK}


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
             "args": ["python3", "-I", "/usr/local/libexec/mhlab-rp-filter", "keep-podmans",
                      "--record", "/run/mhlab/rp_filter"],
             "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
             "timeout": 10},
    "when": {"always": True},
    "stages": ["createRuntime"],
}

# /run/mhlab/rp_filter: where the lab's rp_filter hook records what it
# found, also when rootless podman runs it as a user.
_BARE_SETUP = """\
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
    pid: int      # the lab's init, as the host sees it
    cgroup: Path  # its cgroup, on the host's cgroup2 (the root of its cgroup namespace)
    apt_output: str = ""

    @property
    def procs(self) -> Path:
        """Where the lab's own processes go: the leaf /init (setup.sh)."""
        return self.cgroup / "init" / "cgroup.procs"

    def command(self, *argv: str) -> list[str]:
        """A host command line that runs `argv` of the lab's root inside the
        lab, as root (with env=LAB_ENV)."""
        # First into the lab's cgroup (a plain `nsenter -C` would only change
        # the view), then every namespace of the lab's init, its root and cwd.
        return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.procs),
                "nsenter", "-t", str(self.pid), "-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w",
                "--", *argv]

    def run(self, *argv: str, check: bool = True, stdin: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a command of the lab's root inside the lab, as root."""
        proc = subprocess.run(self.command(*argv), capture_output=True, text=True, input=stdin,
                              timeout=timeout, env=LAB_ENV)
        if check and proc.returncode != 0:
            raise LabError(f"in the lab: {' '.join(argv)} -> {proc.returncode}: "
                           f"{proc.stderr.strip()}")
        return proc

    def sh(self, script: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("sh", "-c", script, check=check)

    def podman(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("podman", *argv, check=check)

    def path(self, inside: str) -> Path:
        """A file of the lab, read from the host through its init's root."""
        return Path(f"/proc/{self.pid}/root") / inside.lstrip("/")

    def settle(self) -> None:
        """Until udev has handled every event so far (a RHEL-like host's
        sysctls of new interfaces); nothing to wait for elsewhere."""
        if self.stack.rhel:
            self.run("udevadm", "settle", "--timeout=10")

    def syslog(self) -> list[str]:
        """Every syslog message sent in the lab so far (see lab_init.py)."""
        try:
            return self.path("/run/mhlab/syslog").read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def run_argv(self, networks: Sequence[str], annotations: dict[str, str] | None = None,
                 runtime: str = "crun", extra: Sequence[str] = ()) -> list[str]:
        """`podman` arguments of a `run` up to and including the rootfs. A
        network may carry options: `mh5a:interface_name=eth0`."""
        argv = ["--runtime", runtime, "run", "--cap-add", "NET_RAW", *extra]
        if self.stack.podman == 4:
            # Debian 12's crun 1.8 loads a device filter (bpf(), refused
            # here) unless it has no cgroup; runc needs one (testlab/lab.py).
            argv += ["--cgroups", "disabled" if runtime == "crun" else "no-conmon"]
        for net in networks:
            argv += ["--network", net]
        for key, value in (annotations or {}).items():
            argv += ["--annotation", f"{key}={value}"]
        return [*argv, "--rootfs", ROOTFS]

    @contextlib.contextmanager
    def container(self, networks: Sequence[str], annotations: dict[str, str] | None = None,
                  runtime: str = "crun", extra: Sequence[str] = ()) -> Iterator[Container]:
        """A detached container running `sleep`; removed on exit."""
        name = f"mh5-{next(_counter)}"
        argv = self.run_argv(networks, annotations, runtime, ["-d", "--name", name, *extra])
        try:
            self.podman(*argv, "sleep", "600")
            cid, pid = self.podman("inspect", "-f", "{{.Id}} {{.State.Pid}}",
                                   name).stdout.split()
            yield Container(self, name, cid, int(pid), runtime)
        finally:
            self.podman("rm", "-f", "-t", "0", name, check=False)

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

    def _setup(self, deb: str | None, bare: bool) -> None:
        if bare:
            self.sh(_BARE_SETUP)
            return
        self.sh(_BARE_SETUP + labnet.setup_script(ROOTFS, BUSYBOX_APPLETS))
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
class Container(inside.InNetns):
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
        self.lab.podman("exec", "-d", self.name, *argv)

    def rp_filter(self) -> dict[str, int]:
        """rp_filter of all, default and every interface, as they are now."""
        out = self.ns("sh", "-c", "grep -r . /proc/sys/net/ipv4/conf/*/rp_filter").stdout
        return {line.split("/")[-2]: int(line.rsplit(":", 1)[1]) for line in out.splitlines()}

    def rp_filter_at_creation(self) -> dict[str, int]:
        """What the lab's hook found (netavark's values, before any hook's)."""
        found: dict[str, int] = json.loads(
            self.lab.path(f"/run/mhlab/rp_filter/{self.id}.json").read_text())
        return found


def _payload(dest: Path, deb: Path | None) -> Path:
    """Files copied into the lab's root before it starts."""
    hard_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    hard_nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    files = {
        "usr/local/sbin/mhlab-init": (FILES / "lab_init.py").read_text(),
        "usr/local/libexec/mhlab-rp-filter": host_lab.RP_FILTER_HOOK.read_text(),
        STRICT_RP_FILTER_HOOK.lstrip("/"): json.dumps(_RP_FILTER_HOOK, indent=2) + "\n",
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
            writable: Sequence[Path] = (), bare: bool = False,
            systemd: bool = False) -> Iterator[Lab]:
    """A lab of `stack` on its cached root (stack.ensure() first), `deb` installed
    unless None; the host's directories `binds` are seen there, read-only, at
    their own paths (e.g. a checkout and its venv's interpreter), and
    `writable` ones writable (where a run leaves its results). `bare`: no
    far host, networks or deb, for a suite that makes its own (testlab/lab.py
    takes addresses that the lab's networks would clash with). `systemd`:
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
            payload = _payload(work / "payload", deb)
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
                lab._setup(deb.name if deb else None, bare)
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
    run.add_argument("--bare", action="store_true",
                     help="no far host, networks or deb: for a suite that makes its own")
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
        if args.bare and deb is not None:
            raise LabError("--bare installs no deb")
        with running(stack, deb, binds, [p.resolve() for p in args.writable],
                     bare=args.bare) as lab:
            cmd = ["sh", "-c", args.cmd[0]] if len(args.cmd) == 1 else args.cmd
            sys.stdout.flush()
            return subprocess.run(lab.command(*cmd), env=LAB_ENV, check=False,
                                  stdin=subprocess.DEVNULL, timeout=args.timeout).returncode
    except (LabError, cgroups.CgroupError, RootError, ValueError, subprocess.TimeoutExpired) as e:
        print(f"testlab.rootlab: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
