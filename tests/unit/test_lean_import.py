"""The hook's lean pyroute2 import leaves the real package, and the modules
it defers, usable afterwards."""

from __future__ import annotations

import subprocess
import sys

# Loads the message classes the lean way, then uses pyroute2 the usual way.
_PROBE = """
import sys
from multihome_hook import netlink
rtmsg = netlink._rtmsg
assert "pyroute2.iproute" not in sys.modules, "the lean import loaded IPRoute"
from pyroute2 import IPRoute
import pyroute2
assert pyroute2.IPRoute is IPRoute
from pyroute2.netlink.rtnl.rtmsg import rtmsg as again
print(again.__name__, IPRoute.__name__)
"""

# What pyroute2 and socket were given instead of logging, traceback and
# selectors works as the real modules do, on first use.
_DEFERRED = """
import sys
from multihome_hook import lean_import, netlink
deferred = ("logging", "traceback", "selectors")
assert not set(deferred) & set(sys.modules), sorted(set(deferred) & set(sys.modules))
if "pr2modules" in sys.modules:  # pyroute2 0.6
    import pr2modules.netlink as pyroute2_netlink
else:
    import pyroute2.netlink as pyroute2_netlink
import socket
pyroute2_netlink.log.warning("logged %s", "for real")
assert pyroute2_netlink.traceback.format_exc().strip() == "NoneType: None"
assert socket.selectors.DefaultSelector is sys.modules["selectors"].DefaultSelector
import logging, traceback
assert logging.getLogger is sys.modules["logging"].getLogger and traceback.format_exc
# A stand-in used while it still stands in (pyroute2 being imported) steps aside.
stand_in = lean_import._Deferred("string")
sys.modules["string"] = stand_in
assert stand_in.ascii_letters == "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
assert sys.modules["string"] is not stand_in
print("ok")
"""


def _run(probe: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60)


def test_pyroute2_is_whole_after_the_lean_import() -> None:
    proc = _run(_PROBE)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["rtmsg", "IPRoute"]


def test_deferred_modules_work_when_used() -> None:
    proc = _run(_DEFERRED)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ok"]
    assert "logged for real" in proc.stderr
