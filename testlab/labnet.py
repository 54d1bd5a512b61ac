"""The network inside a root lab (testlab/rootlab.py): the far host, the
gateways of the macvlan and ipvlan networks, and the podman networks every
test uses. All of it lives in the lab's own network namespace: nothing to
share with other labs on the host, and only the addresses of
../shared/FIELD-NOTES.md (198.18.0.0/15, 203.0.113.0/24, fd18:5::/48).
"""

from __future__ import annotations

from dataclasses import dataclass

FAR_HOST = "203.0.113.10"
FAR_HOST6 = "fd18:5:f::10"


@dataclass(frozen=True)
class Network:
    name: str
    subnet: str
    gateway: str
    driver: str = "bridge"
    # macvlan, ipvlan: the lab's end of a veth whose other end, in the far
    # host's namespace, holds the gateway.
    parent: str | None = None
    subnet6: str | None = None
    internal: bool = False

    @property
    def prefix(self) -> str:
        """The start of every IPv4 address of the network, e.g. "198.18.10."."""
        return self.subnet.rsplit(".", 1)[0] + "."

    @property
    def gateway6(self) -> str:
        assert self.subnet6, f"{self.name} has no IPv6"
        return self.subnet6.replace("::/64", "::1")

    def create_argv(self) -> list[str]:
        """`podman network create` arguments, the name last."""
        argv = ["network", "create", "--disable-dns", "--driver", self.driver,
                "--subnet", self.subnet, "--gateway", self.gateway]
        if self.parent:
            argv += ["--opt", f"parent={self.parent}"]
        if self.driver == "ipvlan":
            argv += ["--opt", "mode=l2"]
        if self.subnet6:
            argv += ["--ipv6", "--subnet", self.subnet6]
        if self.internal:
            argv += ["--internal"]
        return [*argv, self.name]


BRIDGE_A = Network("mh5a", "198.18.10.0/24", "198.18.10.1")
BRIDGE_B = Network("mh5b", "198.18.11.0/24", "198.18.11.1")
DUAL_A = Network("mh5c", "198.18.12.0/24", "198.18.12.1", subnet6="fd18:5:c::/64")
DUAL_B = Network("mh5d", "198.18.13.0/24", "198.18.13.1", subnet6="fd18:5:d::/64")
BRIDGE_C = Network("mh5e", "198.18.23.0/24", "198.18.23.1")
INTERNAL = Network("mh5i", "198.18.14.0/24", "198.18.14.1", internal=True)
MACVLAN = Network("mh5m", "198.18.20.0/24", "198.18.20.1", "macvlan", parent="mvpar")
IPVLAN = Network("mh5v", "198.18.21.0/24", "198.18.21.1", "ipvlan", parent="ivpar")
MACVLAN_B = Network("mh5n", "198.18.22.0/24", "198.18.22.1", "macvlan", parent="mv2par")
NETWORKS = (BRIDGE_A, BRIDGE_B, BRIDGE_C, DUAL_A, DUAL_B, INTERNAL, MACVLAN, IPVLAN, MACVLAN_B)
# Subnets no network of the lab holds: for CNI's bridges (a subnet routed
# twice in the lab's namespace would be neither's) and rootless podman's.
SPARE_SUBNETS = ("198.18.24.0/24", "198.18.25.0/24")
# nc and echo: the TCP listener of testlab/shapes.py (`nc -ll -p PORT -e echo ok`).
BUSYBOX_APPLETS = ("sh", "ip", "ping", "sleep", "cat", "ls", "true", "nc", "echo")
# A published port: the lab's own address on the far host's link, where the
# far host connects to it (podman run -p PUBLISHED:...).
LAB_ADDRESS, PUBLISHED_PORT = "198.18.255.1", 18080

# The lab's network namespace and the far host, inside the lab; busybox
# for the containers' --rootfs.
_SETUP = """\
# Strict filtering, as on a RHEL host; forwarding for the podman bridges.
echo 1 > /proc/sys/net/ipv4/conf/all/rp_filter
echo 1 > /proc/sys/net/ipv4/conf/default/rp_filter
echo 1 > /proc/sys/net/ipv4/ip_forward
echo 1 > /proc/sys/net/ipv6/conf/all/forwarding
ip netns add far
ip link add farlink type veth peer name far0 netns far
ip link add mvpar type veth peer name mvgw netns far
ip link add ivpar type veth peer name ivgw netns far
ip link add mv2par type veth peer name mv2gw netns far
ip addr add 198.18.255.1/30 dev farlink
ip -6 addr add fd18:5:ff::1/64 dev farlink nodad
ip link set farlink up
ip link set mvpar up
ip link set ivpar up
ip link set mv2par up
ip route add {far}/32 via 198.18.255.2
ip -6 route add {far6}/128 via fd18:5:ff::2
# A namespace copies all/default from the host's initial one, not from the
# lab's: set the far host's explicitly (its filter drops replies that come
# back through the wrong uplink, as a real upstream router's would).
ip netns exec far sh -euc '
  for k in all default lo far0 mvgw ivgw mv2gw; do
    echo 1 > /proc/sys/net/ipv4/conf/$k/rp_filter
  done
  ip link set lo up
  ip addr add {far}/32 dev lo
  ip -6 addr add {far6}/128 dev lo
  ip addr add 198.18.255.2/30 dev far0
  ip -6 addr add fd18:5:ff::2/64 dev far0 nodad
  ip link set far0 up
  ip addr add {macvlan_gw}/24 dev mvgw
  ip link set mvgw up
  ip addr add {ipvlan_gw}/24 dev ivgw
  ip link set ivgw up
  ip addr add {macvlan_b_gw}/24 dev mv2gw
  ip link set mv2gw up
  ip route add default via 198.18.255.1
  ip -6 route add default via fd18:5:ff::1'
mkdir -p {rootfs}/bin
cp /usr/bin/busybox {rootfs}/bin/busybox
for applet in {applets}; do ln -s busybox {rootfs}/bin/$applet; done
"""



def setup_script(rootfs: str) -> str:
    """The shell script that builds the far host and the gateways, and puts
    busybox into `rootfs` (inside the lab)."""
    return _SETUP.format(far=FAR_HOST, far6=FAR_HOST6, macvlan_gw=MACVLAN.gateway,
                         ipvlan_gw=IPVLAN.gateway, macvlan_b_gw=MACVLAN_B.gateway,
                         rootfs=rootfs, applets=" ".join(BUSYBOX_APPLETS))
