"""doctor's verdict from the facts of a host (doctor.judge is pure)."""

from __future__ import annotations

from dataclasses import replace

from multihome_hook.doctor import ETC_HOOKS, SHARE_HOOKS, Facts, judge
from multihome_hook.errors import OK, PROBLEM

# Debian 12 made strict, as a RHEL host is: podman 4.3, netavark 1.4.
PODMAN4 = Facts(1, 1, "4.3.1", "netavark", "netavark 1.4.0", "crun",
                (("podman", "bridge"), ("a", "bridge"), ("b", "bridge")),
                (SHARE_HOOKS, ETC_HOOKS))
PODMAN5 = replace(PODMAN4, podman="5.4.2", backend_version="netavark 1.14.0",
                  hooks_dirs=(SHARE_HOOKS,))
PODMAN6 = replace(PODMAN5, podman="6.1.1", backend_version="netavark 2.0.0")
MACVLAN = (("a", "bridge"), ("lan", "macvlan"))


def test_podman4_strict_without_the_hook_is_a_problem() -> None:
    verdict = judge(PODMAN4)
    assert verdict.status == PROBLEM
    assert "a container on two networks loses the replies" in verdict.affected[0]
    assert verdict.next.startswith("install the package")
    assert any("journalctl -t oci-multihome-hook" in note for note in verdict.notes)


def test_with_the_hook_where_podman_reads_it_the_next_step_is_to_annotate() -> None:
    verdict = judge(replace(PODMAN4, hook_in=(SHARE_HOOKS,)))
    assert verdict.status == OK and verdict.affected
    assert "io.multihome.mode=source-routing" in verdict.next


def test_a_host_wide_default_leaves_diagnose_as_the_next_step() -> None:
    verdict = judge(replace(PODMAN4, hook_in=(SHARE_HOOKS,), default_mode="source-routing"))
    assert verdict.next == "oci-multihome-hook diagnose --all"


def test_podman5_bridges_only_are_loosened_by_netavark() -> None:
    verdict = judge(PODMAN5)
    assert (verdict.status, verdict.affected) == (OK, [])
    assert any("netavark loosens the bridges" in note for note in verdict.notes)


def test_podman5_strict_with_a_macvlan_is_affected() -> None:
    verdict = judge(replace(PODMAN5, networks=MACVLAN))
    assert verdict.status == PROBLEM and "on lan and another network" in verdict.affected[0]


def test_the_hook_in_a_directory_podman5_does_not_read() -> None:
    verdict = judge(replace(PODMAN5, networks=MACVLAN, hook_in=(ETC_HOOKS,)))
    assert verdict.status == PROBLEM
    assert any(f"is in {ETC_HOOKS}, which podman 5.4.2 does not read" in note
               for note in verdict.notes)


def test_podman6_published_port_beside_a_macvlan_whatever_rp_filter() -> None:
    verdict = judge(replace(PODMAN6, rp_filter_all=0, rp_filter_default=0, networks=MACVLAN))
    assert verdict.status == PROBLEM
    (reason,) = verdict.affected
    assert "metric 99" in reason and "never answers" in reason


def test_a_loose_host_on_podman4_is_not_affected() -> None:
    verdict = judge(replace(PODMAN4, rp_filter_all=2, rp_filter_default=2))
    assert (verdict.status, verdict.affected) == (OK, [])
    assert any("loose filtering (2)" in note for note in verdict.notes)


def test_without_podman() -> None:
    verdict = judge(Facts(1, 1))
    assert verdict.status == OK and verdict.next.startswith("install podman")
