"""Snapshot and apply against real namespaces, read back from the kernel."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from multihome_hook import netlink, netns, plan, snapshot
from multihome_hook.apply import apply
from multihome_hook.errors import (
    IN_USE,
    INVALID_ANNOTATION,
    INVALID_STATE,
    NO_NAMESPACE,
    ROLLBACK_FAILED,
    ROLLED_BACK,
    UNUSABLE_PRIMARY,
    HostNamespace,
    InUse,
    NoNamespace,
    RollbackFailed,
    RolledBack,
)
from multihome_hook.fix import Fix, fix
from multihome_hook.kernel import Nexthop, Route, Routing, Rule
from multihome_hook.modes import FIXES, LOOSE, ONE_DEFAULT, SOURCE_ROUTING
from multihome_hook.plan import Add, Delete, SetRpFilter
from multihome_hook.primary import Name
from testlab.fakens import Namespace, user_namespace_process
from testlab.rootlab import Lab
from testlab.settings import hook_binary

if TYPE_CHECKING:
    from multihome_hook.plan import Change

MakeNs = Callable[..., Namespace]


def defaults(ns: Namespace, family: int) -> list[dict[str, object]]:
    routes = json.loads(ns.ip("-j", f"-{family}", "route", "show", "default").stdout)
    return [r for r in routes if r["dst"] == "default"]


def v4_defaults(routing: Routing) -> list[Route]:
    return [r for r in routing.defaults() if r.family == socket.AF_INET]


def read_routing() -> Routing:
    with netlink.RouteSocket() as sock:
        return snapshot.read_routing(sock)


def test_snapshot_splits_ipv6_multipath(make_ns: MakeNs) -> None:
    ns = make_ns(2)
    assert len(defaults(ns, 6)) == 1 and len(defaults(ns, 6)[0]["nexthops"]) == 2  # type: ignore[arg-type]
    routing = netns.run_in(ns.pid, read_routing)
    by_family = {f: [r for r in routing.defaults() if r.family == f]
                 for f in (socket.AF_INET, socket.AF_INET6)}
    assert sorted(r.nexthops[0].dev for r in by_family[socket.AF_INET]) == ["eth0", "eth1"]
    assert sorted(r.nexthops[0].gateway or "" for r in by_family[socket.AF_INET6]) == [
        "fd18:20::1", "fd18:21::1"]
    assert all(r.metric == 100 and len(r.nexthops) == 1 for r in routing.defaults())
    assert {a.address for a in routing.addresses} >= {"198.19.240.2", "fd18:21::2"}


def test_one_default_keeps_one_route_and_one_ipv6_nexthop(make_ns: MakeNs) -> None:
    ns = make_ns(3)
    mine = os.stat("/proc/thread-self/ns/net").st_ino
    outcome = netns.run_in(ns.pid, lambda: fix(Fix(ONE_DEFAULT)))
    assert os.stat("/proc/thread-self/ns/net").st_ino == mine  # the caller never moved
    assert len(outcome.changes) == 8  # 2 IPv4 routes, 2 IPv6 nexthops: parked, deleted
    for n in (1, 2):  # parked in their own tables, marked as the hook's
        table = json.loads(ns.ip("-j", "link", "show", f"eth{n}").stdout)[0]["ifindex"] + 2000
        parked = ns.ip("route", "show", "table", str(table)).stdout
        assert f"default via 198.19.24{n}.1 dev eth{n} proto 176 metric 100" in parked, parked
    (v4,) = defaults(ns, 4)
    assert (v4["dev"], v4["gateway"]) == ("eth0", "198.19.240.1")
    (v6,) = defaults(ns, 6)
    assert (v6["dev"], v6["gateway"], v6.get("nexthops")) == ("eth0", "fd18:20::1", None)
    # Link routes and addresses are untouched.
    assert "198.19.242.0/24 dev eth2" in ns.ip("route").stdout
    assert netns.run_in(ns.pid, lambda: fix(Fix(ONE_DEFAULT))).changes == []  # idempotent


def test_one_default_honours_primary(make_ns: MakeNs) -> None:
    ns = make_ns(2)
    netns.run_in(ns.pid, lambda: fix(Fix(ONE_DEFAULT, Name("eth1"))))
    assert [r["dev"] for r in defaults(ns, 4)] == ["eth1"]
    assert [r["dev"] for r in defaults(ns, 6)] == ["eth1"]


def test_loose_never_tightens(make_ns: MakeNs) -> None:
    ns = make_ns(2)
    ns.sysctl("all", 1)
    ns.sysctl("default", 0)
    ns.sysctl("eth0", 1)
    ns.sysctl("eth1", 0)
    netns.run_in(ns.pid, lambda: fix(Fix(LOOSE)))
    assert [ns.sysctl(k) for k in ("all", "default", "eth0", "eth1")] == [2, 0, 2, 0]


def test_failure_rolls_everything_back(make_ns: MakeNs) -> None:
    ns = make_ns(2)
    ns.sysctl("eth0", 1)
    before = ns.state()
    def work() -> None:
        with netlink.RouteSocket() as sock:
            routes = snapshot.read_routing(sock).defaults()
            plan: list[Change] = [Delete(r) for r in routes if r.nexthops[0].dev == "eth1"]
            assert len(plan) == 2  # the IPv4 route and the IPv6 nexthop
            plan += [SetRpFilter("eth0", 1, 2), SetRpFilter("nosuchif0", 1, 2)]
            apply(plan, sock)

    with pytest.raises(RolledBack, match=r"nosuchif0.*rolled back 3 change\(s\)") as info:
        netns.run_in(ns.pid, work)
    assert info.value.status == ROLLED_BACK
    assert ns.state() == before
    assert len(defaults(ns, 6)[0]["nexthops"]) == 2  # type: ignore[arg-type]


def test_a_failed_rollback_says_the_namespace_is_half_changed(make_ns: MakeNs) -> None:
    ns = make_ns(2)
    ns.sysctl("eth0", 0)
    # The kernel takes 1 and refuses to put back an "old" value that no int holds.
    plan = [SetRpFilter("eth0", 1 << 40, 1), SetRpFilter("nosuchif0", 1, 2)]
    with pytest.raises(RollbackFailed, match=r"nosuchif0.*rollback FAILED.*eth0") as info:
        netns.run_in(ns.pid, lambda: apply(plan))
    assert info.value.status == ROLLBACK_FAILED
    assert ns.sysctl("eth0") == 1  # left changed, as said


def test_host_namespace_is_refused() -> None:
    with pytest.raises(HostNamespace, match="shares the hook's network namespace"):
        netns.run_in(os.getpid(), lambda: pytest.fail("entered our own namespace"))


def test_vanished_pid_is_refused() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    with pytest.raises(NoNamespace, match=f"process {gone.pid} does not exist"):
        netns.run_in(gone.pid, lambda: pytest.fail("entered a vanished process"))
    proc = run_hook(state_of(gone.pid, "source-routing"))
    assert (proc.returncode, proc.stderr) == (
        NO_NAMESPACE, f"oci-multihome-hook: container aaaaaaaaaaaa: process {gone.pid} does "
                      "not exist (did it exit?)\n")


def run_hook(state: dict[str, object]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(hook_binary())], input=json.dumps(state), text=True,
                          capture_output=True, timeout=30)


MODES = [m.name for m in FIXES]


def state_of(pid: int, mode: str, **annotations: str) -> dict[str, object]:
    return {"ociVersion": "1.0.2", "id": "a" * 64, "pid": pid,
            "annotations": {"io.multihome.mode": mode, **annotations}}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("networks", "line"), [
    (0, "no network interface, nothing to change"),
    (1, "one uplink (eth0), nothing to change"),
])
def test_fewer_than_two_uplinks_change_nothing_and_log_one_line(
        make_ns: MakeNs, podman_lab: Lab, mode: str, networks: int, line: str) -> None:
    """What a host-wide default meets on every single-network or
    --network none container: exit 0, nothing touched, one journal line."""
    ns = make_ns(networks)
    ns.sysctl("all", 1)
    before, logged = ns.state(), len(podman_lab.syslog())
    proc = run_hook(state_of(ns.pid, mode))
    assert (proc.returncode, proc.stderr) == (0, "")
    assert podman_lab.messages(logged) == [f"container aaaaaaaaaaaa: mode {mode}: {line}"]
    assert ns.state() == before


def test_an_internal_network_is_no_second_uplink(make_ns: MakeNs) -> None:
    ns = make_ns(2)
    ns.ip("route", "del", "default", "dev", "eth1")
    ns.ip("-6", "route", "del", "default", "dev", "eth1")
    before = ns.state()
    proc = run_hook(state_of(ns.pid, "loose"))
    assert (proc.returncode, proc.stderr) == (0, "")
    assert ns.state() == before  # rp_filter stays strict: nothing to loosen it for


def test_hook_leaves_the_host_namespace_alone(podman_lab: Lab) -> None:
    """--network host: the container shares the hook's namespace (the lab's)."""
    before = podman_lab.view()
    for mode in MODES:
        logged = len(podman_lab.syslog())
        proc = run_hook(state_of(os.getpid(), mode))
        assert (proc.returncode, proc.stderr) == (0, "")
        assert podman_lab.messages(logged) == [
            f"container aaaaaaaaaaaa: mode {mode}: shares the host's network namespace "
            "(--network host), nothing changed"]
    assert podman_lab.changes(before) == []


def test_hook_warns_when_a_user_namespace_has_no_interface_yet(make_ns: MakeNs) -> None:
    ns = make_ns(0)
    with user_namespace_process(ns) as pid:
        proc = run_hook(state_of(pid, "source-routing"))
    assert proc.returncode == 0
    assert proc.stderr == (
        "oci-multihome-hook: warning: container aaaaaaaaaaaa has a user namespace of its own, "
        "whose networks podman connects after this hook (no network interface, nothing to "
        "change): `oci-multihome-hook watch` applies source-routing when it starts, or run "
        "`oci-multihome-hook apply --mode source-routing` then\n")


def table_of(ns: Namespace, interface: str) -> int:
    """The routing table source routing gives `interface`."""
    return int(json.loads(ns.ip("-j", "link", "show", interface).stdout)[0]["ifindex"]
               + plan.TABLE_BASE)


def nothing(ns: Namespace) -> None:
    pass


CID = "container bbbbbbbbbbbb: "


@pytest.mark.parametrize(("annotations", "prepare", "code", "message"), [
    pytest.param({"io.multihome.mode": "bogus"}, nothing, INVALID_ANNOTATION,
                 f"{CID}unknown io.multihome.mode 'bogus': expected one of loose, one-default, "
                 "source-routing, off", id="unknown-mode"),
    pytest.param({"io.multihome.mode": "one-default", "io.multihome.rp_filter": "strict"},
                 nothing, INVALID_ANNOTATION, f"{CID}io.multihome.rp_filter=strict needs "
                 "io.multihome.mode=source-routing: with one-default some replies would be "
                 "dropped again", id="strict-without-source-routing"),
    pytest.param({"io.multihome.mode": "one-default", "io.multihome.primary": "198.18.99.0/24"},
                 nothing, UNUSABLE_PRIMARY, f"{CID}primary subnet 198.18.99.0/24 matches no "
                 "interface of the container (eth0, eth1, peer-eth0, peer-eth1)",
                 id="primary-matches-nothing"),
    pytest.param({"io.multihome.mode": "source-routing", "io.multihome.primary": "198.18.0.0/15"},
                 nothing, UNUSABLE_PRIMARY,
                 f"{CID}primary subnet 198.18.0.0/15 is ambiguous: it matches eth0, eth1",
                 id="primary-ambiguous"),
    pytest.param({"io.multihome.mode": "source-routing"},
                 lambda ns: ns.ip("rule", "add", "priority", str(plan.FROM_PRIORITY),
                                  "from", "198.19.240.2", "lookup", "100"),
                 IN_USE, f"{CID}rule priority {plan.FROM_PRIORITY} is already in use",
                 id="priority-in-use"),
    pytest.param({"io.multihome.mode": "source-routing"},
                 lambda ns: ns.ip("route", "add", "198.18.99.0/24", "via", "198.19.240.1",
                                  "table", str(table_of(ns, "eth0"))),
                 IN_USE, f"{CID}routing table ", id="table-in-use"),
])
def test_each_refusal_exits_with_its_code_and_changes_nothing(
        make_ns: MakeNs, annotations: dict[str, str], prepare: Callable[[Namespace], object],
        code: int, message: str) -> None:
    ns = make_ns(2)
    prepare(ns)
    before = ns.state()
    proc = run_hook({"ociVersion": "1.0.2", "id": "b" * 64, "pid": ns.pid,
                     "annotations": annotations})
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.startswith(f"oci-multihome-hook: {message}"), proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert ns.state() == before


@pytest.mark.parametrize("stdin", [b"", b"{", b"[]", b'{"id": "x"}', b"\xff\xfe"])
def test_hook_rejects_malformed_state_in_one_line(stdin: bytes) -> None:
    proc = subprocess.run([str(hook_binary())], input=stdin, capture_output=True, timeout=30)
    assert proc.returncode == INVALID_STATE
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("oci-multihome-hook: "), lines


def test_with_arguments_it_is_the_cli() -> None:
    proc = subprocess.run([str(hook_binary()), "--help"], capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and "diagnose" in proc.stdout
    proc = subprocess.run([str(hook_binary()), "frobnicate"], capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and "invalid choice: 'frobnicate'" in proc.stderr


def test_source_routing_builds_a_table_and_rules_per_uplink(make_ns: MakeNs) -> None:
    ns = make_ns(2)
    netns.run_in(ns.pid, lambda: fix(Fix(SOURCE_ROUTING)))
    rules4 = ns.ip("-4", "rule", "show").stdout
    rules6 = ns.ip("-6", "rule", "show").stdout
    index = {name: json.loads(ns.ip("-j", "link", "show", name).stdout)[0]["ifindex"]
             for name in ("eth0", "eth1")}
    for n, name in enumerate(("eth0", "eth1")):
        table = 2000 + index[name]
        assert f"32700:\tfrom 198.19.24{n}.2 lookup {table}" in rules4
        assert f"32701:\tfrom all oif {name} lookup {table}" in rules4
        assert f"32700:\tfrom fd18:2{n}::2 lookup {table}" in rules6
        v4 = ns.ip("-4", "route", "show", "table", str(table)).stdout
        assert f"default via 198.19.24{n}.1 dev {name}" in v4
        assert f"198.19.24{n}.0/24 dev {name} proto 177 scope link src 198.19.24{n}.2" in v4
        v6 = ns.ip("-6", "route", "show", "table", str(table)).stdout
        assert f"default via fd18:2{n}::1 dev {name}" in v6
    # main: one default per family, the rest of main untouched
    assert len(defaults(ns, 4)) == 1 and len(defaults(ns, 6)) == 1
    assert "nexthops" not in defaults(ns, 6)[0]
    # idempotent: a second run finds nothing to do and changes nothing
    after = ns.state()
    assert netns.run_in(ns.pid, lambda: fix(Fix(SOURCE_ROUTING))).changes == []
    assert ns.state() == after


def test_source_routing_refuses_a_table_in_use(make_ns: MakeNs) -> None:
    ns = make_ns(2)
    eth1 = json.loads(ns.ip("-j", "link", "show", "eth1").stdout)[0]["ifindex"]
    ns.ip("route", "add", "198.18.30.0/24", "dev", "eth1", "table", str(2000 + eth1))
    before = ns.state()
    with pytest.raises(InUse, match=f"routing table {2000 + eth1} is already in use"):
        netns.run_in(ns.pid, lambda: fix(Fix(SOURCE_ROUTING)))
    assert ns.state() == before


def test_source_routing_failure_mid_way_leaves_nothing(make_ns: MakeNs) -> None:
    ns = make_ns(2)
    before = ns.state()
    def work() -> None:
        with netlink.RouteSocket() as sock:
            changes = plan.source_routing(snapshot.read(SOURCE_ROUTING, sock))
            # from + oif rules, IPv4 + IPv6, two uplinks
            assert sum(isinstance(c, Add) and isinstance(c.item, Rule) for c in changes) == 8
            first = changes[0]
            assert isinstance(first, Add)
            # A route through an interface that does not exist: the kernel refuses it.
            bogus = first.item.replace(nexthops=(Nexthop(9999, "nosuch", None),))
            apply([*changes, Add(bogus)], sock)

    with pytest.raises(RolledBack, match=r"rolled back \d+ change\(s\), nothing changed"):
        netns.run_in(ns.pid, work)
    assert ns.state() == before


def test_ipv4_multipath_route_reads_deletes_and_adds_back(make_ns: MakeNs) -> None:
    """RTA_MULTIPATH decoded and encoded (with every pyroute2 the suite runs
    with): an IPv4 multipath route, deleted and added back, is what it was."""
    ns = make_ns(2)
    for dev in ("eth0", "eth1"):
        ns.ip("route", "del", "default", "dev", dev)
    ns.ip("route", "add", "default", "metric", "100", "nexthop", "via", "198.19.240.1",
          "dev", "eth0", "nexthop", "via", "198.19.241.1", "dev", "eth1")
    before = ns.state()

    def work() -> list[str]:
        with netlink.RouteSocket() as sock:
            (route,) = v4_defaults(snapshot.read_routing(sock))
            sock.delete_route(route)
            assert not v4_defaults(snapshot.read_routing(sock))
            sock.add_route(route)
            return [str(hop) for hop in route.nexthops]

    assert netns.run_in(ns.pid, work) == ["via 198.19.240.1 dev eth0", "via 198.19.241.1 dev eth1"]
    assert ns.state() == before


def test_rules_are_read_with_their_selectors(make_ns: MakeNs) -> None:
    ns = make_ns(1)
    ns.ip("rule", "add", "from", "198.19.240.2", "lookup", "2002", "priority", "100")
    ns.ip("rule", "add", "oif", "eth0", "lookup", "2002", "priority", "101")
    ns.ip("rule", "add", "ipproto", "tcp", "sport", "80", "lookup", "2002", "priority", "102")
    ns.ip("-6", "rule", "add", "from", "fd18:20::2", "lookup", "2002", "priority", "103")

    def work() -> list[Rule]:
        with netlink.RouteSocket() as sock:
            return [r for r in snapshot.read_routing(sock, rules=True).rules if r.table == 2002]

    assert netns.run_in(ns.pid, work) == [
        Rule(socket.AF_INET, 100, 2002, src="198.19.240.2", src_len=32),
        Rule(socket.AF_INET, 101, 2002, oif="eth0"),
        Rule(socket.AF_INET, 102, 2002, foreign=True),
        Rule(socket.AF_INET6, 103, 2002, src="fd18:20::2", src_len=128),
    ]
