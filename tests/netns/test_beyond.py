"""What lies beyond a container's interfaces, read from the kernel by
`diagnose pid:N` without podman: a veth's peer enslaved to a bridge on the
host, and the host's filter on that bridge, decide whether a reply that
leaves by the other bridge is dropped (a problem) or gets through (a risk).

The "host" is this test's own namespace (the lab's); the container one of
its own, both bridges and veths named after this process."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator

import pytest

from testlab.commands import run
from testlab.fakens import network
from testlab.settings import hook_binary


@contextlib.contextmanager
def behind_bridges(host_filter: int) -> Iterator[int]:
    """A container namespace on two bridges of this namespace, each with
    `host_filter` as its rp_filter, loose filtering inside (what `loose`
    leaves); yields the pid of a process in it."""
    tag = f"mhb{os.getpid() % 100000}"
    ns, bridges = f"{tag}ns", [f"{tag}br{i}" for i in range(2)]
    sleeper = None
    try:
        run("ip", "netns", "add", ns)
        for i, bridge in enumerate(bridges):
            ifname, v4, _ = network(i)
            run("ip", "link", "add", bridge, "type", "bridge")
            run("ip", "addr", "add", f"{v4}.1/24", "dev", bridge)
            run("ip", "link", "set", bridge, "up")
            run("sh", "-c", f"echo {host_filter} > /proc/sys/net/ipv4/conf/{bridge}/rp_filter")
            run("ip", "link", "add", f"{tag}v{i}", "type", "veth", "peer", "name", ifname,
                "netns", ns)
            run("ip", "link", "set", f"{tag}v{i}", "master", bridge, "up")
            run("ip", "-n", ns, "addr", "add", f"{v4}.2/24", "dev", ifname)
            run("ip", "-n", ns, "link", "set", ifname, "up")
            run("ip", "-n", ns, "route", "append", "default", "via", f"{v4}.1", "metric", "100")
        run("ip", "netns", "exec", ns, "sh", "-c",
            "for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 2 > $f; done")
        sleeper = subprocess.Popen(["ip", "netns", "exec", ns, "sleep", "60"])
        run("sh", "-c", f"while [ $(cat /proc/{sleeper.pid}/comm) != sleep ]; do sleep 0.01; "
            "done")
        yield sleeper.pid
    finally:
        if sleeper:
            sleeper.kill()
            sleeper.wait()
        run("ip", "netns", "del", ns, check=False)
        for bridge in bridges:
            run("ip", "link", "del", bridge, check=False)


@pytest.mark.parametrize(("host_filter", "status", "exit_status"),
                         [(1, "problem", 1), (2, "risk", 0)])
def test_the_hosts_filter_on_the_bridge_decides(root: None, host_filter: int, status: str,
                                                exit_status: int) -> None:
    """Without podman on PATH too (a CRI-O node): pid:N needs none."""
    with behind_bridges(host_filter) as pid:
        proc = subprocess.run([str(hook_binary()), "diagnose", "--json", f"pid:{pid}"],
                              capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL,
                              env={**os.environ, "PATH": "/nonexistent"})
    assert proc.returncode == exit_status, proc.stderr
    (report,) = json.loads(proc.stdout)["containers"]
    assert report["status"] == status
    findings = [f for f in report["findings"] if f["severity"] == status]
    assert [f["kind"] for f in findings] == ["address", "address"]
    assert "(a bridge behind the host's NAT)" in findings[0]["text"]
    if host_filter == 1:
        assert "the host filters strictly on the bridge of eth" in findings[0]["text"]
