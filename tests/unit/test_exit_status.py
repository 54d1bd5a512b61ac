"""The hook's exit status per class of refusal: crun shows its user nothing
else, so each class has a code of its own, in the one table (errors.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from multihome_hook import errors
from multihome_hook.errors import (
    BROKEN,
    EXIT_STATUS,
    INTERNAL,
    INVALID_ANNOTATION,
    INVALID_STATE,
    HookError,
)


def classes(base: type[HookError] = HookError) -> list[type[HookError]]:
    found = []
    for sub in base.__subclasses__():
        found += [sub, *classes(sub)]
    return found


HOOK_ROWS = {code for command, code, _ in EXIT_STATUS if command == "hook"}


@pytest.mark.parametrize(("kind", "code"), [
    (errors.InvalidAnnotation, 10),
    (errors.UnusablePrimary, 11),
    (errors.NoSuchPrimary, 11),
    (errors.InUse, 12),
    (errors.NoNamespace, 13),
    (errors.RolledBack, 14),
    (errors.RollbackFailed, 15),
    (errors.InvalidState, 16),
    (errors.HostNamespace, 0),  # starts, nothing changed
    (HookError, 70),  # unclassified: a bug
], ids=lambda v: getattr(v, "__name__", str(v)))
def test_each_class_has_its_documented_code(kind: type[HookError], code: int) -> None:
    assert kind("x").status == code
    assert code in HOOK_ROWS


def test_every_refusal_has_a_code_of_its_own_clear_of_the_usual_ones() -> None:
    direct = HookError.__subclasses__()
    codes = [kind.status for kind in direct]
    assert len(set(codes)) == len(codes)
    # A subclass of those shares its parent's code: it is the same thing to fix.
    assert all(kind.status == parent.status for parent in direct for kind in classes(parent))
    refusals = {*codes, INTERNAL} - {errors.STARTS}
    assert not refusals & {1, 2, 126, 127} and max(refusals) < 128
    assert refusals | {errors.STARTS, errors.BROKEN} == HOOK_ROWS


_HOOK = "import sys; from multihome_hook.hook import main; sys.exit(main())"
# A bug anywhere in the hook: here, in the parser.
_BUG = ("import multihome_hook.hook as hook\n"
        "def bug(raw): raise KeyError('oops')\n"
        "hook.parse_state = bug\n" + _HOOK)


def hook(stdin: bytes, program: str = _HOOK) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", program], input=stdin.decode(errors="replace"),
                          capture_output=True, text=True, timeout=30)


def annotated(**annotations: str) -> bytes:
    return json.dumps({"ociVersion": "1.0.2", "id": "c" * 64, "pid": 1,
                       "annotations": annotations}).encode()


@pytest.mark.parametrize(("stdin", "code", "message"), [
    (annotated(**{"io.multihome.mode": "bogus"}), INVALID_ANNOTATION,
     "container cccccccccccc: unknown io.multihome.mode 'bogus'"),
    (annotated(**{"io.multihome.mode": "loose", "io.multihome.primary": "eth 0"}),
     INVALID_ANNOTATION, "container cccccccccccc: invalid io.multihome.primary 'eth 0'"),
    (annotated(**{"io.multihome.mode": "loose", "io.multihome.rp_filter": "strict"}),
     INVALID_ANNOTATION, "container cccccccccccc: io.multihome.rp_filter=strict needs"),
    (b"{not json", INVALID_STATE, "malformed OCI state on stdin"),
], ids=["mode", "primary", "rp_filter", "state"])
def test_the_hook_exits_with_the_code_of_its_refusal(stdin: bytes, code: int,
                                                     message: str) -> None:
    proc = hook(stdin)
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.startswith(f"oci-multihome-hook: {message}"), proc.stderr
    assert proc.stderr.count("\n") == 1


def test_a_bug_is_an_internal_error() -> None:
    proc = hook(annotated(**{"io.multihome.mode": "loose"}), _BUG)
    assert (proc.returncode, proc.stderr) == (
        INTERNAL, "oci-multihome-hook: internal error: KeyError: 'oops'\n")


def test_a_missing_library_is_a_broken_installation() -> None:
    missing = _BUG.replace("KeyError('oops')", "ImportError('pyroute2 is not installed')")
    proc = hook(annotated(**{"io.multihome.mode": "loose"}), missing)
    assert (proc.returncode, proc.stderr) == (
        BROKEN, "oci-multihome-hook: broken installation: pyroute2 is not installed\n")
