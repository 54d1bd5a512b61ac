"""A pyroute2 that the hook's lean import no longer fits costs start-up
time, never a container: the hook falls back to the plain import, says so
in one warning line (stderr and syslog) and fixes the namespace as it
always does. `make test-NAME` runs this with each library set."""

from __future__ import annotations

import json
import subprocess
import sys
import syslog
from collections.abc import Callable

import pytest

from multihome_hook.modes import RECOMMENDED
from testlab.fakens import Namespace
from testlab.settings import hook_binary

# In the hook's process, before the hook: pyroute2's rtmsg module runs, then
# raises, while the lean import's stand-ins are in sys.modules (one without
# a __file__ stands in for `logging`); the plain import, with the real
# modules, imports it as usual. syslog's lines go to stdout, which the hook
# never writes.
_PROBE = """
import os, sys, syslog

ERRORS = {
    "ModuleNotFoundError": lambda: ModuleNotFoundError(
        "No module named 'logging.handlers'; 'logging' is not a package",
        name="logging.handlers"),
    "TypeError": lambda: TypeError("isinstance() arg 2 must be a type"),
}
ERROR = ERRORS[sys.argv.pop(1)]  # the hook takes no arguments


def standing_in():
    logging = sys.modules.get("logging")
    return logging is not None and "__file__" not in vars(logging)


class Raising:
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        raise ERROR()


class Breaker:
    def find_spec(self, name, path=None, target=None):
        if not name.endswith(".netlink.rtnl.rtmsg") or not standing_in():
            return None
        for finder in sys.meta_path[1:]:
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                spec.loader = Raising(spec.loader)
                return spec
        return None


sys.meta_path.insert(0, Breaker())
syslog.syslog = lambda priority, message: print(f"syslog {priority} {message}", flush=True)
from multihome_hook.hook import main
main()
"""


def _state(pid: int) -> str:
    return json.dumps({"ociVersion": "1.0.2", "id": "b" * 64, "pid": pid,
                       "annotations": {"io.multihome.mode": RECOMMENDED.name}})


@pytest.mark.parametrize("error", ["ModuleNotFoundError", "TypeError"])
def test_a_broken_lean_import_still_fixes_the_container(make_ns: Callable[..., Namespace],
                                                        error: str) -> None:
    broken, usual = make_ns(2), make_ns(2)
    before = broken.state()
    assert before == usual.state()
    hooked = subprocess.run([sys.executable, "-c", _PROBE, error], input=_state(broken.pid),
                            capture_output=True, text=True, timeout=60)
    assert hooked.returncode == 0, hooked.stderr
    (warning,) = hooked.stderr.splitlines()
    assert warning.startswith("oci-multihome-hook: warning: pyroute2 "), warning
    assert f"did not import the lean way ({error}: " in warning, warning
    logged = hooked.stdout.splitlines()
    warned = warning.removeprefix("oci-multihome-hook: warning: ")
    assert logged[0] == f"syslog {syslog.LOG_WARNING} {warned}", logged
    assert logged[1].startswith(f"syslog {syslog.LOG_INFO} container bbbbbbbbbbbb: "
                                f"mode {RECOMMENDED.name}: "), logged
    assert len(logged) == 2, logged
    # Fixed, and exactly as the hook fixes it with its lean import.
    plain = subprocess.run([str(hook_binary())], input=_state(usual.pid), capture_output=True,
                           text=True, timeout=60)
    assert (plain.returncode, plain.stderr) == (0, "")
    assert broken.state() != before
    assert broken.state() == usual.state()

