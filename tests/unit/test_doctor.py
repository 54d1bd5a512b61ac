"""doctor's verdict from the facts of a host (doctor.judge is pure), by
diagnose's model: the containers the host would make on its networks."""

from __future__ import annotations

from multihome_hook.doctor import ETC_HOOKS, SHARE_HOOKS, Facts, Network, judge
from multihome_hook.errors import OK, PROBLEM

BRIDGES = (Network("podman", "bridge"), Network("a", "bridge"), Network("b", "bridge"))
# Debian 12 made strict, as a RHEL host is: podman 4.3, netavark 1.4.
PODMAN4 = Facts(1, 1, "4.3.1", "netavark", "netavark 1.4.0", "crun", BRIDGES,
                (SHARE_HOOKS, ETC_HOOKS))
PODMAN5 = PODMAN4.replace(podman="5.4.2", backend_version="netavark 1.14.0",
                          hooks_dirs=(SHARE_HOOKS,))
PODMAN6 = PODMAN5.replace(podman="6.1.1", backend_version="netavark 2.0.0")
MACVLAN = (Network("a", "bridge"), Network("lan", "macvlan"))


def test_podman4_strict_without_the_hook_is_a_problem() -> None:
    verdict = judge(PODMAN4)
    assert verdict.status == PROBLEM and verdict.affected
    assert verdict.reasons[0].startswith("a container on podman and a: drops address, "
                                         "outbound traffic (traffic leaving by eth0"), verdict
    assert verdict.next.startswith("install the package")
    assert any("journalctl -t oci-multihome-hook" in note for note in verdict.notes)


def test_with_the_hook_where_podman_reads_it_the_next_step_is_to_annotate() -> None:
    verdict = judge(PODMAN4.replace(hook_in=(SHARE_HOOKS,)))
    assert verdict.status == OK and verdict.affected
    assert "io.multihome.mode=source-routing" in verdict.next


def test_a_host_wide_default_leaves_diagnose_as_the_next_step() -> None:
    verdict = judge(PODMAN4.replace(hook_in=(SHARE_HOOKS,), default_mode="source-routing"))
    assert verdict.next == "oci-multihome-hook diagnose --all"


def test_podman5_bridges_lose_nothing_but_rely_on_unchecked_sources() -> None:
    """netavark loosens its bridges, inside and on the host: nothing
    dropped, a risk noted."""
    verdict = judge(PODMAN5)
    assert (verdict.status, verdict.affected, verdict.reasons) == (OK, False, [])
    assert "a container on podman and a: gets through only because" in verdict.notes[0]


def test_podman5_on_a_rhel_host_whose_bridges_are_strict_again() -> None:
    """systemd-udevd applied RHEL's rp_filter = 1 to podman's bridges."""
    strict = tuple(n.replace(host_filter=1) for n in BRIDGES)
    verdict = judge(PODMAN5.replace(networks=strict))
    assert verdict.status == PROBLEM
    assert verdict.reasons[0].startswith("a container on podman and a: drops address traffic")
    assert any("something set them back (systemd-udevd" in note for note in verdict.notes)


def test_podman5_strict_with_a_macvlan_is_affected() -> None:
    verdict = judge(PODMAN5.replace(networks=MACVLAN))
    assert verdict.status == PROBLEM
    assert verdict.reasons[0].startswith("a container on a and lan: drops address, outbound")


def test_the_hook_in_a_directory_podman5_does_not_read() -> None:
    verdict = judge(PODMAN5.replace(networks=MACVLAN, hook_in=(ETC_HOOKS,)))
    assert verdict.status == PROBLEM
    assert any(f"is in {ETC_HOOKS}, which podman 5.4.2 does not read" in note
               for note in verdict.notes)


def test_a_published_port_beside_a_macvlan_fails_at_any_rp_filter() -> None:
    for version in (PODMAN4, PODMAN5, PODMAN6):
        for value in (0, 2):
            verdict = judge(version.replace(rp_filter_all=value, rp_filter_default=value,
                                            networks=MACVLAN))
            assert verdict.status == PROBLEM, (version.podman, value)
            assert any(r.startswith("a container on a and lan, a port published: drops port")
                       for r in verdict.reasons), verdict.reasons


def test_a_loose_host_on_podman4_drops_nothing_on_bridges() -> None:
    verdict = judge(PODMAN4.replace(rp_filter_all=2, rp_filter_default=2))
    assert (verdict.status, verdict.affected, verdict.reasons) == (OK, False, [])


def test_without_podman_the_answer_is_unknown() -> None:
    verdict = judge(Facts(1, 1))
    assert (verdict.status, verdict.affected) == (OK, None)
    assert verdict.next.startswith("oci-multihome-hook diagnose pid:N")
