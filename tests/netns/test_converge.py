"""The hook and `fix` on namespaces that change after the first run: locking,
pods, lost primaries, reconnects and mode switches, on a real kernel."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable

import pytest

from multihome_hook import netlink, netns, snapshot
from multihome_hook.apply import apply
from multihome_hook.errors import HookError
from multihome_hook.fix import APPLY, Fix, fix
from multihome_hook.modes import FIXES, LOOSE, ONE_DEFAULT, SOURCE_ROUTING, Mode
from multihome_hook.plan import Add, SetRpFilter
from testlab.fakens import Namespace, user_namespace_process
from testlab.settings import hook_binary

MakeNs = Callable[..., Namespace]


def crio_state(pid: int, container: int, mode: str) -> str:
    """What CRI-O hands the hook for a container of a pod: the pod's
    annotations copied into the container's, one network namespace for all."""
    return json.dumps({
        "ociVersion": "1.0.2", "id": f"{container:064x}", "status": "creating", "pid": pid,
        "bundle": "/run/containers/storage/overlay-containers/x/userdata",
        "annotations": {"io.multihome.mode": mode, "io.kubernetes.pod.name": "web",
                        "io.kubernetes.pod.namespace": "default",
                        "io.kubernetes.container.name": f"c{container}"}})


def routing_state(ns: Namespace) -> str:
    """Routes and rules, but the kernel's own local table and link-local
    routes (whose addresses come from random MAC addresses)."""
    lines = []
    for family in ("-4", "-6"):
        routes = ns.ip(family, "route", "show", "table", "all").stdout.splitlines()
        lines += [line for line in routes if "table local" not in line and "fe80::" not in line]
        lines += ns.ip(family, "rule", "show").stdout.splitlines()
    return "\n".join(lines)


def hooks_at_once(pid: int, count: int, mode: str) -> list[subprocess.CompletedProcess[str]]:
    procs = [subprocess.Popen([str(hook_binary())], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(count)]
    for n, proc in enumerate(procs):  # all started before any gets its state
        assert proc.stdin is not None
        proc.stdin.write(crio_state(pid, n + 1, mode))
        proc.stdin.close()
    done = []
    for proc in procs:
        proc.wait(timeout=30)
        assert proc.stderr is not None
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, "",
                                                proc.stderr.read()))
        proc.stderr.close()
        assert proc.stdout is not None
        proc.stdout.close()
    return done


@pytest.mark.parametrize("mode", [m.name for m in FIXES if m.routes])
def test_concurrent_hooks_on_one_pod_namespace_equal_a_single_run(make_ns: MakeNs,
                                                                   mode: str) -> None:
    reference = make_ns(2)
    (single,) = hooks_at_once(reference.pid, 1, mode)
    assert single.returncode == 0, single.stderr
    for _ in range(20):
        ns = make_ns(2)
        for proc in hooks_at_once(ns.pid, 4, mode):
            assert (proc.returncode, proc.stderr) == (0, "")
        assert routing_state(ns) == routing_state(reference)


def test_the_lock_serializes_the_cli_and_the_hook(make_ns: MakeNs) -> None:
    """While one holder has the namespace, a hook waits instead of racing."""
    ns = make_ns(2)
    holder = subprocess.Popen(
        ["python3", "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(1.5)",
         f"/proc/{ns.pid}/ns/net"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    start = time.monotonic()
    (proc,) = hooks_at_once(ns.pid, 1, "one-default")
    waited = time.monotonic() - start
    holder.wait()
    holder.stdout.close()
    assert proc.returncode == 0, proc.stderr
    assert waited > 1.0


def defaults(ns: Namespace, family: int = 4) -> list[str]:
    routes = json.loads(ns.ip("-j", f"-{family}", "route", "show", "default").stdout)
    return sorted(hop["dev"] for r in routes
                  for hop in (r.get("nexthops") or [r]) if r["dst"] == "default")


@pytest.mark.parametrize("mode", [m for m in FIXES if m.routes], ids=str)
def test_losing_the_primary_keeps_a_default_route(make_ns: MakeNs, mode: Mode) -> None:
    ns = make_ns(3)
    netns.run_in(ns.pid, lambda: fix(Fix(mode)))
    assert defaults(ns) == ["eth0"]
    ns.ip("link", "del", "eth0")  # podman network disconnect of the primary
    assert defaults(ns) == []
    outcome = netns.run_in(ns.pid, lambda: fix(Fix(mode)))
    assert outcome.changes
    assert defaults(ns) == ["eth1"] and defaults(ns, 6) == ["eth1"]
    rules = ns.ip("rule").stdout
    assert "oif eth0" not in rules and "198.19.240." not in rules
    assert netns.run_in(ns.pid, lambda: fix(Fix(mode))).changes == []


def test_a_reconnected_interface_gets_fresh_rules(make_ns: MakeNs) -> None:
    ns = make_ns(2)
    netns.run_in(ns.pid, lambda: fix(Fix(SOURCE_ROUTING)))
    ns.ip("link", "del", "eth1")
    ns.ip("link", "add", "eth1", "type", "veth", "peer", "name", "peer-eth1b")
    ns.ip("link", "set", "peer-eth1b", "up")
    ns.ip("addr", "add", "198.19.241.7/24", "dev", "eth1")
    ns.ip("link", "set", "eth1", "up")
    ns.ip("route", "append", "default", "via", "198.19.241.1", "dev", "eth1", "metric", "100")
    netns.run_in(ns.pid, lambda: fix(Fix(SOURCE_ROUTING)))
    index = json.loads(ns.ip("-j", "link", "show", "eth1").stdout)[0]["ifindex"]
    rules = ns.ip("rule").stdout
    assert f"from 198.19.241.7 lookup {2000 + index}" in rules
    assert "198.19.241.2" not in rules  # the old address's rule is gone
    assert rules.count("oif eth1") == 1
    assert netns.run_in(ns.pid, lambda: fix(Fix(SOURCE_ROUTING))).changes == []


def test_a_mode_switch_only_when_asked_for(make_ns: MakeNs) -> None:
    ns = make_ns(2)
    netns.run_in(ns.pid, lambda: fix(Fix(ONE_DEFAULT)))
    before = ns.state()
    with pytest.raises(HookError, match="another mode"):
        netns.run_in(ns.pid, lambda: fix(Fix(SOURCE_ROUTING)))
    assert ns.state() == before
    netns.run_in(ns.pid, lambda: fix(Fix(SOURCE_ROUTING, caller=APPLY)))
    assert "proto 176" not in ns.ip("route", "show", "table", "all").stdout
    assert ns.ip("rule").stdout.count("proto 177") == 4
    netns.run_in(ns.pid, lambda: fix(Fix(LOOSE, caller=APPLY)))
    assert defaults(ns) == ["eth0", "eth1"]  # both back in main
    assert "proto 17" not in ns.ip("rule").stdout
    assert not [line for line in ns.ip("route", "show", "table", "all").stdout.splitlines()
                if "proto 17" in line and " table " in line]


def test_a_foreign_rule_at_our_priority_is_refused(make_ns: MakeNs) -> None:
    ns = make_ns(2)
    ns.ip("rule", "add", "from", "198.19.240.2", "lookup", "100", "priority", "32700")
    before = ns.state()
    with pytest.raises(HookError, match="rule priority 32700 is already in use"):
        netns.run_in(ns.pid, lambda: fix(Fix(SOURCE_ROUTING)))
    assert ns.state() == before


def test_one_default_on_an_ipv4_multipath_route(make_ns: MakeNs) -> None:
    ns = make_ns(2)
    for dev in ("eth0", "eth1"):
        ns.ip("route", "del", "default", "dev", dev)
    ns.ip("route", "add", "default", "metric", "100", "nexthop", "via", "198.19.240.1",
          "dev", "eth0", "nexthop", "via", "198.19.241.1", "dev", "eth1")
    netns.run_in(ns.pid, lambda: fix(Fix(ONE_DEFAULT)))
    (route,) = json.loads(ns.ip("-j", "route", "show", "default").stdout)
    assert (route["dev"], route["gateway"], route.get("nexthops")) == ("eth0", "198.19.240.1", None)
    assert netns.run_in(ns.pid, lambda: fix(Fix(ONE_DEFAULT))).changes == []


class _NoWayBack(SetRpFilter):
    """A change that works, and whose undoing cannot (its interface is gone)."""

    def inverse(self) -> SetRpFilter:
        return SetRpFilter("nosuchif0", self.new, self.old)


def test_a_failed_rollback_says_what_is_left_changed(make_ns: MakeNs) -> None:
    ns = make_ns(2)
    ns.sysctl("eth0", 1)

    def work() -> None:
        with netlink.RouteSocket() as sock:
            route = snapshot.read_routing(sock).defaults()[0]
            bogus = route.replace(table=2999, nexthops=(route.nexthops[0].replace(ifindex=9999),))
            apply([_NoWayBack("eth0", 1, 2), Add(bogus)], sock)

    with pytest.raises(HookError, match=r"rollback FAILED, namespace left changed: "
                                        r"rp_filter nosuchif0 2->1"):
        netns.run_in(ns.pid, work)
    assert ns.sysctl("eth0") == 2  # what the message says is left


def test_loose_in_a_user_namespace_prepares_interfaces_to_come(make_ns: MakeNs) -> None:
    """Only lo at createRuntime: all and default still become loose, and
    interfaces added later copy default."""
    ns = make_ns(0)
    ns.sysctl("all", 1)
    ns.sysctl("default", 1)
    with user_namespace_process(ns) as pid:
        proc = subprocess.run([str(hook_binary())], input=crio_state(pid, 1, "loose"),
                              capture_output=True, text=True, timeout=30)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert (ns.sysctl("all"), ns.sysctl("default")) == (2, 2)
    ns.ip("link", "add", "eth5", "type", "veth", "peer", "name", "peer-eth5")
    assert ns.sysctl("eth5") == 2
