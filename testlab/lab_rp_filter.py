"""Lab-only OCI hook (createRuntime): the strict rp_filter of a RHEL host in
every container of a lab, whatever this machine's own is.

A new network namespace copies `all` and `default` from the machine's
initial namespace (net.core.devconf_inherit_init_net=0), not from the
lab's, and its interfaces copy `default`: without this hook a container's
filter would be whatever this machine has at the moment (Debian 12: 0, 2
on Fedora or Ubuntu). The labs must not change the machine, so each
container is set here instead, before the project's hook (podman runs the
hooks of a stage in file-name order: 00-... < oci-multihome-hook.json).
The policy is the first argument:

- `keep-podmans`: `all`, `default`, `lo` and every interface that is not a
  veth to 1; a veth (the container's side of a podman bridge) only from 0
  to 1, so that the 2 netavark >= 1.11 writes there stays for the tests to
  see (a lab's default);
- `strict`: every interface to 1, netavark's 2 included: the failing
  condition of podman 4 on a podman 5 bridge (the podman 4 suite run on
  podman 5 and 6, tests/rootlab/test_lab_host_suite.py).

A lab has one such hook, its policy given to testlab/rootlab.py's running().

The lab-only annotation `mhlab.filtering` gives a container another host's
filtering instead of RHEL's: `loose` (2, Fedora's and Ubuntu's) or `off`
(0, Debian's); netavark's 2 still stays under `keep-podmans`.

A container in the hook's own namespace (--network host) is left alone.
With `--record DIR`, what it found is kept in DIR/ID.json for the tests,
and logged (mhlab-rp-filter) to syslog.

    python3 -I lab_rp_filter.py keep-podmans|strict [--record DIR] < STATE
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import syslog
from pathlib import Path

_CLONE_NEWNET = 0x40000000
FILTERING_KEY = "mhlab.filtering"
FILTERING = {"strict": 1, "loose": 2, "off": 0}


def _setns(fd: int) -> None:
    """setns(2) into a network namespace: Debian 12's Python 3.11 has no
    os.setns (3.12), so through libc."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="lab_rp_filter.py")
    parser.add_argument("policy", choices=("keep-podmans", "strict"))
    parser.add_argument("--record", type=Path, metavar="DIR")
    args = parser.parse_args()
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
    kept: set[str] = set()
    if args.policy == "keep-podmans":
        # `ip` runs in this process's network namespace, the container's.
        links = json.loads(subprocess.run(["ip", "-j", "-d", "link", "show"], check=True,
                                          capture_output=True, text=True).stdout)
        kept = {link["ifname"] for link in links
                if link.get("linkinfo", {}).get("info_kind") == "veth"
                and found.get(link["ifname"])}
    value = FILTERING[state.get("annotations", {}).get(FILTERING_KEY, "strict")]
    for name in found:
        # netavark's 2 stays: the larger of what it wrote and this host's.
        (conf / name / "rp_filter").write_text(
            str(max(found[name], value) if name in kept else value))
    if args.record:
        args.record.mkdir(parents=True, exist_ok=True)
        (args.record / f"{state['id']}.json").write_text(json.dumps(found))
        # In syslog next to the project hook's line: shows the order.
        syslog.openlog("mhlab-rp-filter")
        syslog.syslog(f"container {state['id'][:12]}: found rp_filter {json.dumps(found)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
