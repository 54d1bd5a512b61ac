"""podman's hooks directories and doctor, in the root labs: podman reads a
directory that containers.conf adds to hooks_dir (podman 6 appends with
`{append=true}`); each kind of faulty hook file there does what
hookfiles.py says (stops every container, is left out, stops the
containers it matches, never runs), and doctor names the file, the fault
and that effect.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from multihome_hook.hookfiles import FAILS, NEVER, REFUSED, SKIPPED
from testlab.labnet import BRIDGE_A
from testlab.rootlab import Lab

DROP_IN = "/etc/containers/containers.conf.d/90-mhlab-hooks-dir.conf"
EXTRA = "/etc/mhlab-hooks.d"
SHARE = "/usr/share/containers/oci/hooks.d"
NOEXEC = "/etc/mhlab-noexec"  # a script without its x bits


def hook(path: str, when: dict[str, object]) -> str:
    return json.dumps({"version": "1.0.0", "hook": {"path": path}, "when": when,
                       "stages": ["prestart"]})


# fault -> (the file, what doctor says of it, its effect)
FAULTS = {
    "not JSON": ("{", "not JSON (Expecting property name enclosed in double quotes: line 1 "
                 f"column 2 (char 1)): {REFUSED}", REFUSED),
    "no program": (hook("/nowhere", {"always": True}),
                   f"hook.path /nowhere: no such file or directory: {SKIPPED}", SKIPPED),
    "not executable": (hook(NOEXEC, {"always": True}),
                       f"hook.path {NOEXEC}: not executable: {FAILS}", FAILS),
    "no condition": (hook("/bin/true", {}), "no when condition (always, annotations, commands, "
                     f"hasBindMounts): {NEVER}", NEVER),
}


@pytest.fixture
def extra_hooks_dir(lab: Lab) -> Iterator[None]:
    """EXTRA read by podman besides SHARE: appended on podman 6, listed in
    full before (podman 5 has no append)."""
    dirs = f'["{EXTRA}", {{append=true}}]' if lab.stack.podman >= 6 else f'["{SHARE}", "{EXTRA}"]'
    lab.run("mkdir", "-p", EXTRA, "/etc/containers/containers.conf.d")
    lab.run("sh", "-c", 'printf "[engine]\\nhooks_dir = %s\\n" "$1" > "$2"', "sh", dirs, DROP_IN)
    lab.run("sh", "-c", f"printf '#!/bin/sh\\n' > {NOEXEC} && chmod 644 {NOEXEC}")
    try:
        yield
    finally:
        lab.run("rm", "-rf", EXTRA, DROP_IN, NOEXEC)


@pytest.mark.parametrize("fault", FAULTS)
def test_doctor_names_each_faulty_hook_file_and_what_podman_does(
        lab: Lab, extra_hooks_dir: None, fault: str) -> None:
    text, said, effect = FAULTS[fault]
    lab.run("sh", "-c", 'printf "%s" "$1" > "$2"', "sh", text, f"{EXTRA}/faulty.json")
    doctor = lab.run("oci-multihome-hook", "doctor", check=False).stdout
    assert f"hooks: podman reads {SHARE}, {EXTRA};" in doctor, doctor
    invalid = [line for line in doctor.splitlines() if line.startswith("invalid hook ")]
    assert invalid == [f"invalid hook {EXTRA}/faulty.json: {said}"], doctor
    # A container without the annotation: only a fault that stops containers stops it.
    started = lab.podman(*lab.run_argv([BRIDGE_A.name], extra=["--rm"]), "true", check=False)
    assert (started.returncode == 0) == (effect in (SKIPPED, NEVER)), started.stderr
    # Left out, the file takes no other hook with it: ours still refuses a bad mode.
    if effect == SKIPPED:
        refused = lab.podman(*lab.run_argv([BRIDGE_A.name], {"io.multihome.mode": "bogus"},
                                           extra=["--rm"]), "true", check=False)
        assert refused.returncode != 0 and "(exit code: 10)" in refused.stderr, refused.stderr
