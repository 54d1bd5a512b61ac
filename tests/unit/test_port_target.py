"""Where a published port leads, read from nft's view of netavark's rules
(multihome_hook.host.port_target): the first network's jump wins, whichever
firewall driver wrote them."""

from __future__ import annotations

import pytest

from multihome_hook.host import port_target

# podman 4.3, netavark 1.4: iptables rules, seen through iptables-nft.
IPTABLES_NFT = """\
table ip nat {
	chain NETAVARK-DN-48B4B2F9995BF {
		ip saddr 10.89.71.0/24 tcp dport 18081 jump NETAVARK-HOSTPORT-SETMARK
		tcp dport 18081 counter packets 0 bytes 0 dnat to 10.89.71.2:8080
	}

	chain NETAVARK-HOSTPORT-DNAT {
		tcp dport 18081  counter packets 0 bytes 0 jump NETAVARK-DN-107D2B4FEEDCD
		tcp dport 18081  counter packets 0 bytes 0 jump NETAVARK-DN-48B4B2F9995BF
	}

	chain NETAVARK-DN-107D2B4FEEDCD {
		tcp dport 18081 counter packets 0 bytes 0 dnat to 10.89.72.2:8080
	}
}
"""
# podman 5 and 6: netavark's own nftables table.
NETAVARK_NFT = """\
table inet netavark {
	chain NETAVARK-HOSTPORT-DNAT {
		tcp dport 18082 jump nv_3099ca4d_10_89_71_0_nm24_dnat
		tcp dport 18081 jump nv_3099ca4d_10_89_71_0_nm24_dnat
		tcp dport 18081 jump nv_70e998cb_10_89_72_0_nm24_dnat
	}
	chain nv_3099ca4d_10_89_71_0_nm24_dnat {
		ip saddr 127.0.0.1 tcp dport 18081 jump NETAVARK-HOSTPORT-SETMARK
		tcp dport 18082 dnat ip to 10.89.71.3:8080
		tcp dport 18081 dnat ip to 10.89.71.2:8080
	}
	chain nv_70e998cb_10_89_72_0_nm24_dnat {
		tcp dport 18081 dnat ip to 10.89.72.2:8080
	}
}
"""


def test_the_first_jump_wins() -> None:
    assert port_target(IPTABLES_NFT, 18081) == "10.89.72.2"
    assert port_target(NETAVARK_NFT, 18081) == "10.89.71.2"
    assert port_target(NETAVARK_NFT, 18082) == "10.89.71.3"


def test_a_port_not_published_is_an_error() -> None:
    with pytest.raises(LookupError, match="port 1808 "):
        port_target(NETAVARK_NFT, 1808)
