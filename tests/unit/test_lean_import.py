"""The hook's lean pyroute2 import leaves the real package usable afterwards."""

from __future__ import annotations

import subprocess
import sys

# Loads the message classes the lean way, then uses pyroute2 the usual way.
_PROBE = """
import sys
from multihome_hook import netlink
rtmsg = netlink._message_class("rtmsg", "rtmsg")
assert "pyroute2.iproute" not in sys.modules, "the lean import loaded IPRoute"
from pyroute2 import IPRoute
import pyroute2
assert pyroute2.IPRoute is IPRoute
from pyroute2.netlink.rtnl.rtmsg import rtmsg as again
print(again.__name__, IPRoute.__name__)
"""


def test_pyroute2_is_whole_after_the_lean_import() -> None:
    proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["rtmsg", "IPRoute"]
