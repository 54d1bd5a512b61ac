"""Podman 5 and 6 with the installed deb: what netavark already does,
the annotations, refusals under crun and runc, the deb's dependencies (the
network shapes and their losses: test_shapes.py).

Every container runs `--rootfs` busybox in the lab (testlab/rootlab.py); the
hook comes from podman's default hook dir, never `--hooks-dir`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator

import pytest

from multihome_hook.errors import IN_USE, INVALID_ANNOTATION, UNUSABLE_PRIMARY
from testlab import shapes
from testlab.labnet import BRIDGE_A, BRIDGE_B, MACVLAN
from testlab.policy import require
from testlab.rootlab import Lab

MODE, PRIMARY = "io.multihome.mode", "io.multihome.primary"
RUNTIMES = ("crun", "runc")
# Pinned interface names, so that `one-default` (no primary given: equal
# metrics, the name that sorts first) keeps the bridge: eth0 is the bridge,
# eth1 the macvlan.
BRIDGE_MACVLAN = shapes.pinned([BRIDGE_A.name, MACVLAN.name])


def test_two_bridges_netavark_loosens_the_bridge_veths(lab: Lab) -> None:
    """netavark >= 1.11 sets rp_filter 2 on the container side of a bridge:
    the two-bridge container of podman 4 loses nothing on podman 5 and 6
    (as measured in test_shapes.py); bridges keep metric 100."""
    with lab.container([BRIDGE_A.name, BRIDGE_B.name]) as c:
        created = c.rp_filter_at_creation()
        # 2 before any hook ran, in a namespace whose `default` (copied from
        # the host) was not 2: set by netavark, not inherited.
        require(created["default"] != 2, "the host's default rp_filter is 2: a container's "
                "interfaces inherit it, netavark's own 2 cannot be told apart")
        assert (created["eth0"], created["eth1"]) == (2, 2), created
        assert c.rp_filter() == {"all": 1, "default": 1, "lo": 1, "eth0": 2, "eth1": 2}
        routes = c.default_routes()
        assert [r["metric"] for r in routes] == [100, 100], routes


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_network_name_as_primary_for_the_hook_and_the_cli(lab: Lab, runtime: str) -> None:
    """Podman 5's network definitions name the primary: in the annotation
    (read by the hook from the files, podman holds its locks), and in `apply
    --primary` (the installed CLI, from podman inspect). The macvlan is not
    the network the automatic choice keeps (eth0, the bridge)."""
    annotations = {MODE: "one-default", PRIMARY: MACVLAN.name}
    with lab.container(BRIDGE_MACVLAN, annotations, runtime) as c:
        assert [r["dev"] for r in c.default_routes()] == ["eth1"]
        assert c.loss(count=8, bind="eth1") == 0
    with lab.container(BRIDGE_MACVLAN, {}, runtime) as c:
        proc = lab.run("oci-multihome-hook", "apply", "--mode", "one-default", "--primary",
                        MACVLAN.name, c.name, check=False)
        assert proc.returncode == 0, proc.stderr
        assert [r["dev"] for r in c.default_routes()] == ["eth1"]
        shown = lab.run("oci-multihome-hook", "diagnose", c.name, check=False)
        assert f"eth1 ({MACVLAN.name})" in shown.stdout, shown.stdout


def test_diagnose_sees_where_the_replies_leave(lab: Lab) -> None:
    """A bridge beside a macvlan: netavark 2.0 puts the macvlan's default
    first (metric 99), so replies from the bridge's address, a published
    port's included, leave by the macvlan; before, the two alternate.
    diagnose names it, and is healthy once source routing is in place."""
    how = "leave by" if lab.stack.metric("macvlan") < lab.stack.metric("bridge") else "may leave by"
    with lab.container(BRIDGE_MACVLAN, {}, "crun", ["-p", "18090:8080"]) as c:
        sick = lab.run("oci-multihome-hook", "diagnose", c.name, check=False)
        assert sick.returncode == 1, sick.stdout + sick.stderr
        bridge = rf"eth0 \({BRIDGE_A.name}: a bridge behind the host's NAT\)'s address \S+"
        lan = rf"eth1 \({MACVLAN.name}: a macvlan onto the LAN\)"
        assert re.search(rf"problem \(address\): replies from {bridge} {how} {lan} .*: dropped "
                         rf"\(the router of {lan} drops sources that are not of its LAN\)\n",
                         sick.stdout), sick.stdout
        assert re.search(rf"problem \(port\): published 18090->8080/tcp leads to {bridge}; its "
                         rf"replies {how} {lan} .*: dropped", sick.stdout), sick.stdout
        proc = lab.run("oci-multihome-hook", "apply", "--mode", "source-routing", c.name,
                       check=False)
        assert proc.returncode == 0, proc.stderr
        healthy = lab.run("oci-multihome-hook", "diagnose", c.name, check=False)
        assert healthy.returncode == 0, healthy.stdout


def test_diagnose_finds_a_lost_primary_and_apply_mends_it(lab: Lab) -> None:
    """source-routing, then its primary disconnected with no watch running:
    no IPv4 default route is left in main (the other uplink's waits in its
    table) and the primary's rules name an address that is gone. diagnose
    says so, as a problem with apply and watch as the fix; apply promotes
    the other default, and the container is healthy again."""
    annotations = {MODE: "source-routing", PRIMARY: BRIDGE_A.name}
    with lab.container(BRIDGE_MACVLAN, annotations) as c:
        lab.podman("network", "disconnect", BRIDGE_A.name, c.name)
        lost = lab.run("oci-multihome-hook", "diagnose", c.name, check=False)
        assert lost.returncode == 1, lost.stdout + lost.stderr
        assert c.loss(count=8) == 100  # nothing leaves: no default route
        assert "problem (no-default): no IPv4 default route in main" in lost.stdout, lost.stdout
        assert re.search(r"note: 2 rule\(s\) name an address or interface that is gone: IPv4 "
                         r"rule 32700: from \S+ lookup \d+; IPv4 rule 32701: oif eth0 ",
                         lost.stdout), lost.stdout
        assert (f"the primary is gone: oci-multihome-hook apply --mode source-routing {c.name} "
                "brings a default route back now; the watch service") in lost.stdout, lost.stdout
        mended = lab.run("oci-multihome-hook", "apply", "--mode", "source-routing", c.name,
                         check=False)
        assert mended.returncode == 0, mended.stdout + mended.stderr
        healthy = lab.run("oci-multihome-hook", "diagnose", c.name, check=False)
        assert healthy.returncode == 0, healthy.stdout
        assert c.loss(count=8) == 0


# The networks a container joins, for as long as it needs them.
Joining = Callable[[Lab, str], contextlib.AbstractContextManager[list[str]]]


@contextlib.contextmanager
def alone(lab: Lab, runtime: str) -> Iterator[list[str]]:
    """The networks of a container of its own."""
    yield [BRIDGE_A.name, MACVLAN.name]


@contextlib.contextmanager
def beside_source_routing(lab: Lab, runtime: str) -> Iterator[list[str]]:
    """The networks of a container that joins a running one's namespace,
    where the hook has set up source routing: rules and tables another mode
    must not take over."""
    with lab.container(BRIDGE_MACVLAN, {MODE: "source-routing"}, runtime) as c:
        yield [f"container:{c.name}"]


@pytest.mark.parametrize(("annotations", "networks", "code", "message"), [
    pytest.param({MODE: "bogus"}, alone, INVALID_ANNOTATION,
                 "unknown io.multihome.mode 'bogus'", id="bad-mode"),
    pytest.param({MODE: "one-default", PRIMARY: "198.18.99.0/24"}, alone, UNUSABLE_PRIMARY,
                 "primary subnet 198.18.99.0/24 matches no interface of the container",
                 id="primary-matches-nothing"),
    pytest.param({MODE: "one-default"}, beside_source_routing, IN_USE,
                 "the network namespace already holds this hook's routing of another mode",
                 id="routing-in-use"),
])
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_refused_container(lab: Lab, runtime: str, annotations: dict[str, str],
                             networks: Joining,
                             code: int, message: str) -> None:
    """A refusal stops the container. runc shows the hook's message; crun
    drops the hook's stderr: its user sees the exit code, which says what
    to fix, and the message is only in syslog."""
    with networks(lab, runtime) as joined:
        seen = len(lab.syslog())
        argv = lab.run_argv(joined, annotations, runtime, ["--rm"])
        proc = lab.podman(*argv, "true", check=False)
    assert proc.returncode != 0
    if runtime == "crun":
        assert re.search(r"crun: error executing hook `/usr/libexec/oci/hooks\.d/"
                         rf"oci-multihome-hook` \(exit code: {code}\)", proc.stderr), proc.stderr
        assert message not in proc.stderr
    else:
        assert f"exit status {code}" in proc.stderr, proc.stderr
        assert "oci-multihome-hook: " in proc.stderr and message in proc.stderr, proc.stderr
    logged = [line for line in lab.syslog()[seen:] if "oci-multihome-hook[" in line]
    assert len(logged) == 1 and message in logged[0], logged


def test_crun_keeps_the_hooks_stderr_with_its_annotation(lab: Lab) -> None:
    """crun's `run.oci.hooks.stderr=FILE`: the one way to the message on the
    user's side."""
    out = "/tmp/hooks-stderr"
    argv = lab.run_argv([BRIDGE_A.name, MACVLAN.name],
                         {MODE: "bogus", "run.oci.hooks.stderr": out}, "crun", ["--rm"])
    assert lab.podman(*argv, "true", check=False).returncode != 0
    kept = lab.path(out).read_text()
    assert re.search(r"oci-multihome-hook: container [0-9a-f]{12}: unknown io\.multihome\.mode "
                     r"'bogus'", kept), kept


def test_the_deb_uses_debian_packages_only(lab: Lab) -> None:
    """apt installed the deb and nothing else; the hook imports Debian's
    pyroute2 and pydantic (there is no pip in the root, and no route out)."""
    assert re.search(r"0 upgraded, 1 newly installed", lab.apt_output), lab.apt_output
    out = lab.run("python3", "-I", "-c", "import multihome_hook, pydantic, pyroute2; "
                   "print(multihome_hook.__file__, pyroute2.__file__, pydantic.__file__)")
    assert all(p.startswith("/usr/lib/python3/dist-packages/") for p in out.stdout.split())
    assert lab.path("/usr/share/containers/oci/hooks.d/oci-multihome-hook.json").exists()


def test_the_lab_runs_its_stacks_podman(lab: Lab) -> None:
    version = lab.podman("--version").stdout.split()[-1]
    assert int(version.split(".")[0]) == lab.stack.podman, version
    for runtime in RUNTIMES:
        assert lab.run(runtime, "--version").returncode == 0


@pytest.mark.matrix
def test_doctor_names_what_this_stack_breaks(lab: Lab) -> None:
    """The deb's doctor on each stack's own Python and libraries: a strict
    host with macvlan networks, the hook installed where podman reads hooks.
    Judged by diagnose's model, as the shapes measure it: a port published
    on a bridge beside a macvlan never answers, whatever the stack; two
    bridges drop replies where the host's bridges filter strictly (podman 4,
    or a RHEL-like host whose udev made them strict again, once they
    exist), and lose nothing where netavark loosened them."""
    with lab.container([BRIDGE_A.name, BRIDGE_B.name]):
        lab.settle()
        proc = lab.run("oci-multihome-hook", "doctor", check=False)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert f"podman {lab.stack.podman}." in out, out
    assert "oci-multihome-hook.json in /usr/share/containers/oci/hooks.d" in out, out
    assert "verdict: affected\n" in out, out
    assert f"a container on {BRIDGE_A.name} and {MACVLAN.name}, a port published: drops port" \
        in out, out
    strict_bridges = not lab.stack.loosens_bridges or lab.stack.rhel
    two_bridges = f"a container on {BRIDGE_A.name} and {BRIDGE_B.name}: drops"
    assert (two_bridges in out) == strict_bridges, out
    assert ("something set them back (systemd-udevd" in out) == lab.stack.rhel, out

