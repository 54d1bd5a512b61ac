"""Lab-only OCI hook: give every container the strict rp_filter of a RHEL host.

A new network namespace copies `all` and `default` from the host's initial
namespace (net.core.devconf_inherit_init_net=0), not from the lab's, and its
interfaces copy `default`: without this hook the containers' filter would be
whatever this machine's host has at the moment (Debian 12: 0, 1 while
someone's host-side tests run, 2 on Fedora or Ubuntu). The lab must not
change the host, so each container is set here instead, at createRuntime,
before the project's hook (podman runs the hooks of a stage in file-name
order: 00-mhlab-... < oci-multihome-hook.json): `all`, `default`, `lo` and
every interface that is not a veth to 1, as on a RHEL host; a veth (the
container's side of a podman bridge) only from 0 to 1, so that the 2 netavark
writes there stays for the tests to see.

What it found is kept in /run/mhlab/rp_filter/ID.json for the tests, and
logged (mhlab-rp-filter) to the lab's syslog.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import syslog
from pathlib import Path

OUT = "/run/mhlab/rp_filter"


_CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    """setns(2) into a network namespace: Debian 12's Python 3.11 has no
    os.setns (3.12), so through libc."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def main() -> int:
    state = json.load(sys.stdin)
    theirs = f"/proc/{int(state['pid'])}/ns/net"
    if os.path.samefile(theirs, "/proc/self/ns/net"):
        return 0  # --network host: the lab's own namespace is not a container's to set
    with open(theirs) as netns:
        _setns(netns.fileno())
    # /proc/sys/net is the namespace of the process that opens it: now the
    # container's.
    conf = Path("/proc/sys/net/ipv4/conf")
    found = {d.name: int((d / "rp_filter").read_text()) for d in conf.iterdir()}
    # `ip` runs in this process's network namespace, the container's.
    links = json.loads(subprocess.run(["/usr/bin/ip", "-j", "-d", "link", "show"], check=True,
                                      capture_output=True, text=True).stdout)
    veths = {link["ifname"] for link in links
             if link.get("linkinfo", {}).get("info_kind") == "veth"}
    for name, value in found.items():
        if name not in veths or value == 0:
            (conf / name / "rp_filter").write_text("1")
    out = Path(OUT)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{state['id']}.json").write_text(json.dumps(found))
    # In the lab's syslog next to the project hook's line: shows the order.
    syslog.openlog("mhlab-rp-filter")
    syslog.syslog(f"container {state['id'][:12]}: found rp_filter {json.dumps(found)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
