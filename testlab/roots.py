"""Debian roots for the labs, one per podman stack, made with mmdebstrap.

A stack is a Debian suite (plus, for podman 6, packages from experimental)
with podman, netavark, crun, runc and the Python libraries the project's
deb depends on. Its root is made once, outside the repository, at a path
named by its suite and a digest of its package list
(/var/cache/oci-multihome-hook/SUITE-DIGEST-root: checkouts that want other
packages, side by side or one after the other, never rebuild each other's
root under a running lab), and used read-only as the lower layer of every
lab's overlay (testlab/rootlab.py). The stamp file is written last: a root
without one (build interrupted) is built again.

    python -m testlab.roots build [--force] [STACK...]   # default: every stack
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import settings

CACHE = settings.roots_cache()
# What every lab runs: podman and its helpers, the containers' busybox, the
# measurements' tools, the deb's dependencies (python3, pyroute2, pydantic),
# what the README has an operator type (sysctl: procps), and systemd (as on
# a host: the deb's service test boots it as a lab's init, testlab/rootlab.py).
_COMMON = ("aardvark-dns", "crun", "runc", "passt", "iproute2", "iputils-ping",
           "busybox-static", "python3", "python3-pyroute2", "python3-pydantic", "iptables",
           "nftables", "mount", "util-linux", "procps", "systemd")
# What a lab needs from its root; checked before the stamp is written.
_NEEDED = ("usr/bin/podman", "usr/bin/crun", "usr/sbin/runc", "usr/bin/python3",
           "usr/bin/busybox", "usr/bin/nsenter", "usr/bin/ping", "usr/bin/ip",
           "usr/lib/podman/netavark", "usr/lib/python3/dist-packages/pyroute2",
           "usr/lib/python3/dist-packages/pydantic", "usr/bin/apt-get",
           "usr/lib/systemd/systemd", "usr/bin/systemctl")


class RootError(RuntimeError):
    """A root could not be made; the message says why."""


@dataclass(frozen=True)
class Stack:
    name: str      # podman4, podman5, podman6: the lab's and the tests' name for it
    title: str     # for people: "podman 5.4 (Debian 13)"
    suite: str     # the Debian suite mmdebstrap installs
    podman: int    # podman's major version there
    # netavark >= 2.0 gives macvlan/ipvlan default routes metric 99, bridges
    # 100: the order of two defaults is no longer random.
    l2_metric: int = 100
    # Suites besides `suite` (their packages chosen in `include` as NAME/SUITE).
    extra_suites: tuple[str, ...] = ()
    include: tuple[str, ...] = ("podman", "netavark")
    # The network drivers its netavark has (1.4 has no ipvlan).
    drivers: tuple[str, ...] = ("bridge", "macvlan", "ipvlan")
    # A RHEL-like host (testlab/rootlab.py): systemd-udevd applies a sysctl.d
    # with rp_filter 1 for all, default and `*` to every new interface, as
    # RHEL ships it, so podman's bridges are strict again after netavark.
    rhel: bool = False
    # The whole root-lab suite runs on it (tests/rootlab), not only the
    # tests marked `matrix` (the network shapes, doctor).
    whole_suite: bool = True

    @property
    def loosens_bridges(self) -> bool:
        """netavark >= 1.11 (podman 5 and later) writes rp_filter 2 on its
        bridges and on the container's side of their veths."""
        return self.podman >= 5

    def metric(self, kind: str) -> int:
        """The metric of the default route netavark gives a network of this
        kind (bridge, macvlan, ipvlan)."""
        return self.l2_metric if kind in ("macvlan", "ipvlan") else 100

    @property
    def root(self) -> Path:
        digest = hashlib.sha256(json.dumps(self._stamp(), sort_keys=True).encode()).hexdigest()
        return CACHE / f"{self.suite}-{digest[:10]}-root"

    def _file(self, suffix: str) -> Path:
        return self.root.with_name(f"{self.root.name}.{suffix}")

    def _stamp(self) -> dict[str, object]:
        return {"suite": self.suite, "extra_suites": list(self.extra_suites),
                "packages": [*self.include, *_COMMON]}

    def ready(self) -> bool:
        """The root is complete and was made for this package list."""
        try:
            stamp = json.loads(self._file("stamp").read_text())
        except (OSError, ValueError):
            return False
        return (self.root.is_dir() and isinstance(stamp, dict)
                and all(stamp.get(k) == v for k, v in self._stamp().items()))

    @contextlib.contextmanager
    def locked(self, exclusive: bool) -> Iterator[None]:
        """Held shared by every running lab (the root is its overlay's lower
        layer, which must not change under it), exclusively by a build."""
        CACHE.mkdir(parents=True, exist_ok=True)
        with self._file("lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield

    def ensure(self, force: bool = False) -> Path:
        """The cached root, built first if it is missing or incomplete."""
        if not force:
            # Shared: a lab of this stack may be running (and holds it too).
            with self.locked(exclusive=False):
                if self.ready():
                    return self.root
        with self.locked(exclusive=True):
            if self.ready() and not force:
                return self.root
            self._build()
            return self.root

    def _build(self) -> None:
        mmdebstrap = shutil.which("mmdebstrap")
        if mmdebstrap is None:
            raise RootError("mmdebstrap not found: apt-get install mmdebstrap "
                            "(make test installs it)")
        mirror = debian_mirror()
        stamp, log_path = self._file("stamp"), self._file("log")
        stamp.unlink(missing_ok=True)
        new = self.root.with_name(self.root.name + ".new")
        remove_tree(new)
        # The sources as lines: mmdebstrap then takes the suite from them,
        # and an experimental line adds its packages at a lower priority.
        sources = [f"deb {mirror} {suite} main" for suite in (self.suite, *self.extra_suites)]
        argv = [mmdebstrap, "--variant=apt",
                # unstable's and experimental's Release files may be past
                # Valid-Until on a mirror's snapshot
                "--aptopt=Acquire::Check-Valid-Until \"false\"",
                f"--include={','.join((*self.include, *_COMMON))}", self.suite, str(new),
                *sources]
        print(f"building the {self.title} root: {' '.join(argv)} (log: {log_path})",
              file=sys.stderr)
        start = time.monotonic()
        with log_path.open("wb") as log:
            code = subprocess.call(argv, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, timeout=1200)
        if code != 0:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-25:])
            raise RootError(f"mmdebstrap exited {code} (mirror {mirror}); the end of "
                            f"{log_path}:\n{tail}")
        # Path.exists would follow an absolute symlink out to the host: lstat
        # through the root's own relative links only (these paths have none).
        missing = [p for p in _NEEDED if not os.path.lexists(new / p)]
        if missing:
            raise RootError(f"mmdebstrap succeeded but {new} lacks {', '.join(missing)}")
        remove_tree(self.root)
        new.rename(self.root)
        tmp = stamp.with_name(stamp.name + ".tmp")
        tmp.write_text(json.dumps({**self._stamp(), "mirror": mirror,
                                   "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                   "seconds": round(time.monotonic() - start, 1)}) + "\n")
        tmp.rename(stamp)  # last: the root counts as complete from here on
        print(f"{self.title} root built in {time.monotonic() - start:.0f} s", file=sys.stderr)


# Debian 12: podman 4.3 with netavark 1.4 and CNI, runc and crun 1.8, as a
# host has them; with what rootless podman needs (a user, subordinate ids,
# slirp4netns) and the tools of the host suite's tests.
PODMAN4 = Stack("podman4", "podman 4.3 (Debian 12)", "bookworm", podman=4,
                include=("podman", "netavark", "containernetworking-plugins", "uidmap",
                         "slirp4netns", "catatonit", "passwd"),
                drivers=("bridge", "macvlan"), whole_suite=False)
# udev: for the RHEL-like stacks, which share these roots.
PODMAN5 = Stack("podman5", "podman 5.4 (Debian 13)", "trixie", podman=5,
                include=("podman", "netavark", "udev"))
# Debian's experimental has podman 6 and netavark 2.0; the rest is unstable's.
PODMAN6 = Stack("podman6", "podman 6.1 (Debian unstable + experimental)", "unstable",
                podman=6, l2_metric=99, extra_suites=("experimental",),
                include=("podman/experimental", "netavark/experimental", "udev"))
PODMAN5_RHEL = dataclasses.replace(PODMAN5, name="podman5-rhel", rhel=True, whole_suite=False,
                                   title="podman 5.4 (Debian 13) on a RHEL-like host")
PODMAN6_RHEL = dataclasses.replace(PODMAN6, name="podman6-rhel", rhel=True, whole_suite=False,
                                   title="podman 6.1 (Debian unstable + experimental) on a "
                                   "RHEL-like host")
STACKS = {stack.name: stack for stack in (PODMAN4, PODMAN5, PODMAN6, PODMAN5_RHEL,
                                          PODMAN6_RHEL)}


def selected(value: str | None = None) -> list[Stack]:
    """The stacks named in `value` (comma-separated; $MULTIHOME_STACKS when
    None), every stack when empty or unset."""
    if value is None:
        value = settings.stacks()
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = sorted(set(names) - set(STACKS))
    if unknown:
        raise RootError(f"unknown stack(s) {unknown}: not in {sorted(STACKS)}")
    return [STACKS[n] for n in names] if names else list(STACKS.values())


def debian_mirror() -> str:
    """Debian's package mirror, as apt on this machine is configured
    (one-line and deb822 sources), or $MULTIHOME_DEBIAN_MIRROR."""
    mirror = settings.debian_mirror()
    if mirror:
        return mirror
    sources = [Path("/etc/apt/sources.list"),
               *sorted(Path("/etc/apt/sources.list.d").glob("*.list")),
               *sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))]
    uris: list[str] = []
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("URIs:"):
                uris += line.split()[1:]
            elif line.startswith("deb "):
                # deb [options] URI suite components...
                words = re.sub(r"\[[^]]*\]", "", line).split()
                uris += words[1:2]
    for uri in uris:
        # The main archive, not debian-security, debian-ports or a vendor's.
        if uri.rstrip("/").endswith("/debian"):
            return uri.rstrip("/")
    raise RootError("no Debian mirror (a URI ending in /debian) in /etc/apt/sources.list*: "
                    "set MULTIHOME_DEBIAN_MIRROR")


def _mounts_under(path: Path) -> list[str]:
    """Mount points at or below path (mountinfo's field 5, octal escapes undone)."""
    found = []
    prefix = str(path)
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return found


def remove_tree(path: Path) -> None:
    """rm -rf, but never through a mount: an interrupted mmdebstrap can leave
    the host's /dev or /proc mounted inside its target."""
    if not path.exists() and not path.is_symlink():
        return
    for point in sorted(_mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], check=False)
    left = _mounts_under(path)
    if left:
        raise RootError(f"cannot remove {path}: still mounted: {', '.join(left)}")
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testlab.roots",
                                     description="The labs' Debian roots.")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="make the roots that are missing or incomplete")
    build.add_argument("--force", action="store_true", help="build them again anyway")
    build.add_argument("stacks", nargs="*", metavar="STACK",
                       help=f"of {', '.join(STACKS)} (default: all, or $MULTIHOME_STACKS)")
    args = parser.parse_args(argv)
    try:
        for stack in selected(",".join(args.stacks) if args.stacks else None):
            start = time.monotonic()
            stack.ensure(args.force)
            print(f"{stack.name}: {stack.root} ready ({time.monotonic() - start:.0f} s)")
    except RootError as e:
        print(f"testlab.roots: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
