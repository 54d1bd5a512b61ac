"""What `make test` calls a changed host (testlab/hoststate.py's comparison)."""

from __future__ import annotations

from testlab.hoststate import differences

FIREWALL = ["*filter", ":INPUT ACCEPT [0:0]", "COMMIT"]
BEFORE: dict[str, object] = {
    "interfaces": {"lo": ["127.0.0.1/8"], "eth0": ["192.0.2.2/24"]},
    "sysctls": {"ipv4/conf/all/rp_filter": "0", "ipv4/ip_forward": "0"},
    "firewall": FIREWALL,
    "podman": {},
}


def test_the_same_host_is_no_change() -> None:
    assert differences(BEFORE, dict(BEFORE)) == []


def test_each_change_is_one_line() -> None:
    after = {**BEFORE,
             "interfaces": {"lo": ["127.0.0.1/8"], "eth0": ["192.0.2.2/24"], "podman1": []},
             "sysctls": {"ipv4/conf/all/rp_filter": "0", "ipv4/ip_forward": "1"},
             "firewall": [*FIREWALL, ":NETAVARK_FORWARD - [0:0]"],
             "podman": {"networks": ["mhtest1n0"]}}
    assert differences(BEFORE, after) == [
        "firewall: new: :NETAVARK_FORWARD - [0:0]",
        "interfaces podman1: None -> []",
        "podman networks: None -> ['mhtest1n0']",
        "sysctls ipv4/ip_forward: '0' -> '1'",
    ]
