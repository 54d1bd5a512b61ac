"""The operator CLI against real containers: diagnose, apply, watch, doctor."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from multihome_hook.models import ApplyReport, DiagnoseReport, DoctorReport, parse
from multihome_hook.modes import FIXES
from testlab.labnet import BRIDGE_A, BRIDGE_B
from testlab.rootlab import Container, Lab
from testlab.settings import hook_binary
from testlab.watch import watching

MODE, PRIMARY = "io.multihome.mode", "io.multihome.primary"


def namespace_state(c: Container) -> tuple[str, ...]:
    return (c.ns("ip", "-4", "route", "show", "table", "all").stdout,
            c.ns("ip", "-6", "route", "show", "table", "all").stdout,
            c.ns("ip", "rule").stdout, c.ns("ip", "-6", "rule").stdout,
            c.ns("sh", "-c", "grep -r . /proc/sys/net/ipv4/conf/*/rp_filter").stdout)


def test_diagnose_then_apply_fixes_a_running_container(podman: Lab,
                                                        nets: list[str]) -> None:
    """loose fixes what leaves, not the replies to what comes in on an
    address (they may leave by the other uplink): diagnose says so, and
    source routing, recommended, fixes both."""
    with podman.container(nets[:2]) as c:
        sick = podman.cli("diagnose", c.name)
        assert sick.returncode == 1, sick.stderr
        assert "PROBLEM" in sick.stdout
        for dev in ("eth0", "eth1"):
            assert re.search(rf"problem \(outbound\): traffic leaving by {dev} \([^)]*\) \(bound "
                             rf"to it: ping -I {dev}, SO_BINDTODEVICE\) loses its replies",
                             sick.stdout), sick.stdout
        assert "fix with --mode loose: 5 change(s)\n      rp_filter all 1->2\n" in sick.stdout
        # By name, podman says what lies beyond each interface.
        assert re.search(r"eth\d \(\S+: a bridge behind the host's NAT\)'s address", sick.stdout)
        applied = podman.cli("apply", "--mode", "loose", c.name)
        assert applied.returncode == 0, applied.stderr
        assert "mode loose: 5 change(s)\n      rp_filter all 1->2\n" in applied.stdout
        assert c.loss() == 0
        loosened = podman.cli("diagnose", f"pid:{c.pid}")
        assert loosened.returncode == 1, loosened.stdout
        assert "strict rp_filter" not in loosened.stdout
        # pid:N, without podman: the kernel says eth0 leads to a bridge the
        # lab's host filters strictly.
        assert re.search(r"problem \(address\): replies from eth1 \([^)]*\)'s address \S+ may "
                         r"leave by eth0 .*: dropped \(the host filters strictly on the bridge",
                         loosened.stdout), loosened.stdout
        routed = podman.cli("apply", "--mode", "source-routing", c.name)
        assert routed.returncode == 0, routed.stderr
        healthy = podman.cli("diagnose", f"pid:{c.pid}")
        assert healthy.returncode == 0, healthy.stdout
        assert c.loss() == 0


def test_dry_run_changes_nothing(podman: Lab, nets: list[str]) -> None:
    with podman.container(nets[:2]) as c:
        c.settle()
        before = namespace_state(c)
        for mode in (m.name for m in FIXES):
            proc = podman.cli("apply", "--mode", mode, "--dry-run", c.name)
            assert proc.returncode == 0, proc.stderr
            assert f"{c.name} (" in proc.stdout and f"mode {mode}, dry run: " in proc.stdout
        assert namespace_state(c) == before


def test_json_report_validates_against_the_models(podman: Lab, nets: list[str]) -> None:
    with podman.container(nets[:2]) as sick, \
            podman.container(nets[:2], {MODE: "one-default"}) as fixed:
        proc = podman.cli("diagnose", "--json", sick.name, fixed.name)
        assert proc.returncode == 1, proc.stderr
        report = parse(DiagnoseReport, json.loads(proc.stdout))
        assert report.schema_version == 3
        assert [r.healthy for r in report.containers] == [False, True]
        assert [r.status for r in report.containers] == ["problem", "healthy"]
        assert {i.network for i in report.containers[0].interfaces} == set(nets[:2])
        assert report.containers[1].mode_annotation == "one-default"
        assert len([r for r in report.containers[1].default_routes if r.family == "ipv4"]) == 1
        assert all(i.effective_rp_filter == 1 for i in report.containers[0].interfaces)


def test_unknown_container_is_one_line_and_exit_2(podman: Lab) -> None:
    proc = podman.cli("diagnose", "no-such-container-here")
    assert proc.returncode == 2
    assert proc.stderr == "oci-multihome-hook: no-such-container-here: no such container\n"
    proc = podman.cli("apply", "--mode", "loose", "pid:999999999")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr


def test_watch_fixes_a_network_connect(podman: Lab, nets: list[str]) -> None:
    with podman.container(nets[:1], {MODE: "one-default"}) as c, \
            watching(podman) as watch:
        podman.podman("network", "connect", nets[1], c.name)
        line = watch.expect(f"network {nets[1]} connected, mode one-default: ")
        assert "delete IPv4 default" in line, line
        assert len(c.default_routes()) == 1
        assert c.loss() == 0


def test_a_network_name_is_a_primary_for_the_hook_and_the_cli(podman: Lab,
                                                              nets: list[str]) -> None:
    """Resolved from podman's definition files by the hook (which may not ask
    podman), from podman inspect by the CLI; eth0 is not always --network #1."""
    annotations = {MODE: "one-default", PRIMARY: nets[1]}
    with podman.container(nets[:2], annotations) as hooked, \
            podman.container(nets[:2]) as applied:
        (route,) = hooked.default_routes()
        assert route["dev"] == hooked.interface_in(BRIDGE_B.prefix)
        proc = podman.cli("apply", "--mode", "one-default", "--primary", nets[1], applied.name)
        assert proc.returncode == 0, proc.stderr
        (route,) = applied.default_routes()
        assert route["dev"] == applied.interface_in(BRIDGE_B.prefix)
        shown = podman.cli("diagnose", applied.name)
        assert shown.returncode == 0, shown.stderr
        lost = applied.interface_in(BRIDGE_A.prefix)
        assert f"  {lost} ({nets[0]})" in shown.stdout
        assert (f"limit: {lost} ({nets[0]}) has no default route: it answers only its own "
                "subnet") in shown.stdout


def test_an_unknown_primary_lists_the_interfaces_and_networks(podman: Lab,
                                                              nets: list[str]) -> None:
    with podman.container(nets[:2]) as c:
        proc = podman.cli("apply", "--mode", "one-default", "--primary", "net-x", c.name)
        assert proc.returncode == 2
        network_of = {c.interface_in(net.prefix): net.name for net in (BRIDGE_A, BRIDGE_B)}
        listing = ", ".join(f"{name} ({network_of[name]})" for name in ("eth0", "eth1"))
        assert proc.stderr == (f"oci-multihome-hook: {c.name}: primary 'net-x' matches no "
                               f"interface or network of the container ({listing})\n")
    argv = podman.run_argv(nets[:2], {MODE: "one-default", PRIMARY: "net-x"}, extra=["--rm"])
    podman.refuse([*argv, "true"],
                  "primary 'net-x' matches no interface or network of the container (eth0 (mh5")


def test_diagnose_shows_the_fix_now_and_for_good(podman: Lab, nets: list[str]) -> None:
    with podman.container(nets[:2]) as c:
        proc = podman.cli("diagnose", c.name)
        assert proc.returncode == 1, proc.stderr
        out = proc.stdout
        # The recommended mode first: its command is the one to copy.
        recommended = out.index("  fix with --mode source-routing (recommended: every uplink "
                                "keeps working, strict filtering stays on): ")
        assert recommended < out.index("fix with --mode loose")
        for mode in (m.name for m in FIXES):
            assert f"    now:       oci-multihome-hook apply --mode {mode} {c.name}\n" in out
            assert f"podman run --annotation io.multihome.mode={mode}" in out
        assert "    Quadlet:   [Container] Annotation=io.multihome.mode=loose\n" in out
        # The primary of the permanent lines is a network: interface order is not kept.
        kept = re.search(r"Annotation=io.multihome.mode=one-default "
                         r"io.multihome.primary=(\S+)\n", out)
        assert kept and kept.group(1) in nets[:2], out
        other = BRIDGE_B if kept.group(1) == BRIDGE_A.name else BRIDGE_A
        assert f"    trade: afterwards {c.interface_in(other.prefix)} "\
               f"({other.name}) answers only its own subnet" in out


def test_apply_says_how_long_and_how_to_keep_it(podman: Lab, nets: list[str]) -> None:
    with podman.container(nets[:2]) as c:
        proc = podman.cli("apply", "--mode", "source-routing", "--primary", nets[0], c.name)
        assert proc.returncode == 0, proc.stderr
        assert "  lasts until the container is restarted or recreated; to keep it:" in proc.stdout
        assert (f"Annotation=io.multihome.mode=source-routing io.multihome.primary={nets[0]}\n"
                in proc.stdout)


def test_apply_json(podman: Lab, nets: list[str]) -> None:
    with podman.container(nets[:2]) as c:
        proc = podman.cli("apply", "--mode", "one-default", "--json", c.name, "pid:999999999")
        assert proc.returncode == 2, proc.stderr
        report = parse(ApplyReport, json.loads(proc.stdout))
        assert report.schema_version == 1
        done, failed = report.containers
        assert (done.container, done.status, done.mode, done.dry_run) == (
            c.name, "applied", "one-default", False)
        assert done.pid == c.pid and done.id
        # the other network's default route: parked in its table, then out of main
        assert [c.split()[0] for c in done.changes] == ["add", "delete"], done.changes
        assert done.permanent[0] == "io.multihome.mode=one-default"
        assert done.permanent[1] in {f"io.multihome.primary={n}" for n in nets[:2]}
        assert done.lasts == "until the container is restarted or recreated"
        assert (failed.status, failed.id, failed.changes) == ("error", None, [])
        assert failed.error and "process 999999999 does not exist" in failed.error
        again = parse(ApplyReport, json.loads(
            podman.cli("apply", "--mode", "one-default", "--json", c.name).stdout))
        assert again.containers[0].status == "unchanged"


def test_diagnose_all_reports_each_container_in_place(podman: Lab, nets: list[str],
                                                      tmp_path: Path) -> None:
    """A host-network container is not diagnosed (and no "refusing" from a
    read-only command); one that exits during the run is an error in place;
    the others are still diagnosed; the exit status is the worst."""
    with podman.container(nets[:2]) as sick, podman.container(["host"]) as host, \
            podman.container(nets[:1]) as exiting:
        # podman ps lists it, then it exits: a podman that stops it right after `ps`.
        shim = tmp_path / "podman"
        shim.write_text(f"""#!/bin/sh
if [ "$1" = ps ]; then
    {shutil.which("podman")} "$@"; status=$?
    {shutil.which("podman")} kill {exiting.name} >/dev/null
    exit $status
fi
exec {shutil.which("podman")} "$@"
""")
        shim.chmod(0o755)
        env = dict(podman.env, PATH=f"{tmp_path}:{podman.env['PATH']}")
        proc = subprocess.run(podman.command(str(hook_binary()), "diagnose", "--all", "--json"),
                              capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 2, proc.stderr
        reports = {r.container: r for r in parse(DiagnoseReport,
                                                 json.loads(proc.stdout)).containers}
        assert reports[sick.name].status == "problem"
        assert reports[host.name].status == "host-network"
        assert reports[host.name].error is None and reports[host.name].healthy is None
        assert reports[exiting.name].status == "error"
        assert f"oci-multihome-hook: {exiting.name}: not running\n" in proc.stderr
        assert "refusing" not in proc.stderr + proc.stdout
        text = podman.cli("diagnose", host.name, sick.name)
        assert text.returncode == 1, text.stderr
        assert text.stdout.startswith(f"{host.name} (")
        assert ("): shares the host's network namespace (--network host): not diagnosed\n"
                f"{sick.name} (") in text.stdout
        assert text.stderr == ""


def test_a_closed_stdout_ends_quietly(podman: Lab, nets: list[str]) -> None:
    """`diagnose c | head -c0`: no traceback, nothing on stderr, the status
    is the verdict's."""
    with podman.container(nets[:2]) as c:
        read_end, write_end = os.pipe()
        os.close(read_end)
        with os.fdopen(write_end, "w") as closed:
            proc = subprocess.run(podman.command(str(hook_binary()), "diagnose", c.name),
                                  stdout=closed,
                                  stderr=subprocess.PIPE, text=True, env=podman.env, timeout=60)
        assert proc.stderr == ""
        assert proc.returncode == 1


def test_doctor_judges_this_podman(podman: Lab, nets: list[str]) -> None:
    """The lab's host is strict and its podman reads no hooks dir holding the
    hook (the tests use --hooks-dir): on podman 4, affected and a problem."""
    proc = podman.cli("doctor")
    out = proc.stdout
    assert "rp_filter: all 1, default 1: strict (1)" in out, out
    assert f"{nets[0]} (bridge" in out and "network backend netavark" in out, out
    if podman.stack.podman == 4:
        assert proc.returncode == 1, out + proc.stderr
        assert "verdict: affected\n  a container on " in out, out
        assert "next: install the package" in out, out
    report = parse(DoctorReport, json.loads(podman.cli("doctor", "--json").stdout))
    assert report.effective_rp_filter == 1 and report.podman is not None
    assert (nets[0], "bridge") in {(n.name, n.driver) for n in report.networks}

