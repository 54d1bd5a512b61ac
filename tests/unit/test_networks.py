"""Podman network names: definition files (netavark, CNI) and resolution."""

from __future__ import annotations

import ipaddress
import json
import socket
from pathlib import Path

import pytest

from multihome_hook.errors import UnusablePrimary
from multihome_hook.kernel import Address, Nexthop, Route, Routing
from multihome_hook.networks import definitions, host_uid, resolve_primary
from multihome_hook.primary import Name, Network, primary_ifindex

V4 = socket.AF_INET
NETAVARK = {"name": "net-a", "driver": "bridge", "network_interface": "podman1",
            "subnets": [{"subnet": "198.18.10.0/24", "gateway": "198.18.10.1"},
                        {"subnet": "fd18:10::/64", "gateway": "fd18:10::1"}]}
CNI = {"cniVersion": "0.4.0", "name": "net-b", "plugins": [
    {"type": "bridge", "ipam": {"type": "host-local", "ranges": [[{"subnet": "198.18.11.0/24"}]]}},
    {"type": "portmap"}]}
CNI_OLD = {"cniVersion": "0.3.0", "name": "net-c",
           "plugins": [{"type": "bridge", "ipam": {"type": "host-local",
                                                   "subnet": "198.18.12.0/24"}}]}
DHCP = {"name": "lan", "driver": "macvlan", "subnets": [], "ipam_options": {"driver": "dhcp"}}


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[str, ...]:
    netavark, cni = tmp_path / "networks", tmp_path / "net.d"
    netavark.mkdir()
    cni.mkdir()
    (netavark / "net-a.json").write_text(json.dumps(NETAVARK))
    (netavark / "lan.json").write_text(json.dumps(DHCP))
    (netavark / "netavark.lock").write_text("")
    (netavark / "broken.json").write_text("{")
    (cni / "87-net-b.conflist").write_text(json.dumps(CNI))
    (cni / "88-net-c.conflist").write_text(json.dumps(CNI_OLD))
    return str(netavark), str(cni), str(tmp_path / "absent")


def net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text)


def test_definitions_of_netavark_and_cni(dirs: tuple[str, ...]) -> None:
    assert dict(definitions(dirs)) == {
        "lan": (), "net-a": (net("198.18.10.0/24"), net("fd18:10::/64")),
        "net-b": (net("198.18.11.0/24"),), "net-c": (net("198.18.12.0/24"),),
        "podman": (net("10.88.0.0/16"),)}


@pytest.mark.parametrize(("uid_map", "uid", "host"), [
    ("         0          0 4294967295\n", 0, 0),  # rootful
    ("         0       1000          1\n         1     100000      65536\n", 0, 1000),
    ("         0       1000          1\n         1     100000      65536\n", 5, 100004),
])
def test_host_uid(uid_map: str, uid: int, host: int) -> None:
    assert host_uid(uid_map, uid) == host


ROUTING = Routing({1: "lo", 2: "eth0", 3: "eth1"},
                  (Address(2, V4, "198.18.11.2", 24), Address(3, V4, "198.18.10.2", 24)),
                  tuple(Route(V4, 100, (Nexthop(i, f"eth{i - 2}", f"198.18.{13 - i}.1"),))
                        for i in (2, 3)))


def test_an_interface_name_wins_over_a_network(dirs: tuple[str, ...]) -> None:
    assert resolve_primary(Name("eth0"), ["lo", "eth0", "eth1"], definitions(dirs)) == Name("eth0")


def test_a_network_name_names_the_interface_with_an_address_in_it(
        dirs: tuple[str, ...]) -> None:
    primary = resolve_primary(Name("net-a"), ["lo", "eth0", "eth1"], definitions(dirs))
    assert isinstance(primary, Network)
    assert primary_ifindex(ROUTING, primary, [2, 3]) == 3


@pytest.mark.parametrize(("name", "message"), [
    ("net-x", "primary 'net-x' matches no interface or network of the container "
              "(eth0 (net-b), eth1 (net-a))"),
    ("net-c", "primary network 'net-c' (198.18.12.0/24) matches no interface of the "
              "container (eth0 (net-b), eth1 (net-a))"),
])
def test_no_match_lists_interfaces_and_networks(dirs: tuple[str, ...], name: str,
                                                message: str) -> None:
    primary = resolve_primary(Name(name), ["lo", "eth0", "eth1"], definitions(dirs))
    with pytest.raises(UnusablePrimary) as error:
        primary_ifindex(ROUTING, primary, [2, 3])
    assert str(error.value) == message


def test_a_network_without_subnets_says_so(dirs: tuple[str, ...]) -> None:
    with pytest.raises(UnusablePrimary, match="has no subnet in its definition"):
        resolve_primary(Name("lan"), ["lo", "eth0"], definitions(dirs))
