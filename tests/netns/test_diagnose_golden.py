"""`diagnose --json` against a golden document: the schema operators' scripts
rely on, field by field, on a namespace built the same way every time."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from testlab.fakens import Namespace
from testlab.settings import hook_binary

GOLDEN = Path(__file__).parent / "golden" / "diagnose.json"


def normalized(document: dict[str, object]) -> dict[str, object]:
    """What varies from run to run: the pid, and the link-local addresses
    (made from random MAC addresses)."""
    for report in document["containers"]:  # type: ignore[attr-defined]
        report["container"] = report["pid"] = "PID"
        for interface in report["interfaces"]:
            interface["addresses"] = [a for a in interface["addresses"]
                                      if not a.startswith("fe80:")]
    return document


def test_diagnose_json_matches_the_golden_document(
        make_ns: Callable[..., Namespace]) -> None:
    ns = make_ns(2)
    for key in ("all", "default", "lo", "eth0", "eth1", "peer-eth0", "peer-eth1"):
        ns.sysctl(key, 1)
    proc = subprocess.run([str(hook_binary()), "diagnose", "--json", f"pid:{ns.pid}"],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1, proc.stderr  # a problem found
    # A change here changes what scripts read: a new schema version, or
    # only new fields (README, "diagnose --json").
    assert normalized(json.loads(proc.stdout)) == json.loads(GOLDEN.read_text())
