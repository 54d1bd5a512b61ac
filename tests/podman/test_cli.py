"""The operator CLI against real containers: diagnose, apply, watch."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from multihome_hook.models import DiagnoseReport, parse
from testlab import lab

MODE = "io.multihome.mode"


def cli(podman: lab.Podman, *argv: str) -> subprocess.CompletedProcess[str]:
    return lab.run(str(lab.hook_binary()), *argv, check=False, env=podman.env)


def namespace_state(c: lab.Container) -> tuple[str, ...]:
    return (c.ns("ip", "-4", "route", "show", "table", "all").stdout,
            c.ns("ip", "-6", "route", "show", "table", "all").stdout,
            c.ns("ip", "rule").stdout, c.ns("ip", "-6", "rule").stdout,
            c.ns("sh", "-c", "grep -r . /proc/sys/net/ipv4/conf/*/rp_filter").stdout)


def test_diagnose_then_apply_loose_fixes_a_running_container(podman: lab.Podman,
                                                              nets: list[str]) -> None:
    with podman.container(nets[:2]) as c:
        sick = cli(podman, "diagnose", c.name)
        assert sick.returncode == 1, sick.stderr
        assert "PROBLEM" in sick.stdout
        assert ("problem: 2 IPv4 default routes and strict rp_filter on eth0, eth1: replies "
                "arriving on ") in sick.stdout and " are dropped" in sick.stdout
        assert "fix with --mode loose: 5 change(s)\n      rp_filter all 1->2\n" in sick.stdout
        applied = cli(podman, "apply", "--mode", "loose", c.name)
        assert applied.returncode == 0, applied.stderr
        assert "mode loose: 5 change(s)\n      rp_filter all 1->2\n" in applied.stdout
        healthy = cli(podman, "diagnose", f"pid:{c.pid}")
        assert healthy.returncode == 0, healthy.stdout
        assert c.loss() == 0


def test_dry_run_changes_nothing(podman: lab.Podman, nets: list[str]) -> None:
    with podman.container(nets[:2]) as c:
        c.settle()
        before = namespace_state(c)
        for mode in ("loose", "one-default", "source-routing"):
            proc = cli(podman, "apply", "--mode", mode, "--dry-run", c.name)
            assert proc.returncode == 0, proc.stderr
            assert f"{c.name} (" in proc.stdout and f"mode {mode}, dry run: " in proc.stdout
        assert namespace_state(c) == before


def test_json_report_validates_against_the_models(podman: lab.Podman, nets: list[str]) -> None:
    with podman.container(nets[:2]) as sick, \
            podman.container(nets[:2], {MODE: "one-default"}, podman.hooks_dir()) as fixed:
        proc = cli(podman, "diagnose", "--json", sick.name, fixed.name)
        assert proc.returncode == 1, proc.stderr
        report = parse(DiagnoseReport, json.loads(proc.stdout))
        assert report.schema_version == 1
        assert [r.healthy for r in report.containers] == [False, True]
        assert report.containers[1].mode_annotation == "one-default"
        assert len([r for r in report.containers[1].default_routes if r.family == "ipv4"]) == 1
        assert all(i.effective_rp_filter == 1 for i in report.containers[0].interfaces)


def test_unknown_container_is_one_line_and_exit_2(podman: lab.Podman) -> None:
    proc = cli(podman, "diagnose", "no-such-container-here")
    assert proc.returncode == 2
    assert proc.stderr == "oci-multihome-hook: no such container: no-such-container-here\n"
    proc = cli(podman, "apply", "--mode", "loose", "pid:999999999")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr


def test_watch_fixes_a_network_connect(podman: lab.Podman, nets: list[str],
                                       hooks: Path) -> None:
    with podman.container(nets[:1], {MODE: "one-default"}, hooks) as c, \
            lab.watching(podman) as watch:
        podman("network", "connect", nets[1], c.name)
        line = watch.expect(f"network {nets[1]} connected, mode one-default: ")
        assert "delete IPv4 default" in line, line
        assert len(c.default_routes()) == 1
        assert c.loss() == 0
