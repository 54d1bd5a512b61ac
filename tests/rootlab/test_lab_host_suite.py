"""`make test` on a newer podman: the podman 4 lab's suite (tests/podman's
test_podman.py and test_cni.py) runs against each stack's podman (5.4 and
netavark 1.14; 6.1 and netavark 2.0) in a lab of its own, under crun and
runc, with CI=true. This checkout and its venv's interpreter (pyenv's,
like the venv's Python 3.13) are bound in read-only: the tests run there
as `make test-venv` runs them in the podman 4 lab, the venv's hook
included.

The lab's rp_filter hook has the `strict` policy there: it undoes
netavark's rp_filter=2 on bridges, so that the bug still shows where the
tests assert it; test_cni.py's tests are deselected (podman 5 has no CNI
backend)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from testlab import rootlab
from testlab.roots import Stack

SUITE = ("tests/podman/test_podman.py", "tests/podman/test_cni.py")


def test_the_host_podman_tests_pass_in_the_lab(stack: Stack) -> None:
    venv = Path(sys.prefix)
    binds = [rootlab.REPO, *filter(None, [rootlab.interpreter_bind(stack, venv)])]
    # No deb: the hook under test is the venv's. Nothing is written to the
    # read-only checkout.
    with rootlab.running(stack, None, binds=binds, rp_filter="strict") as lab:
        proc = lab.run("env", "CI=true", "MULTIHOME_RUNTIMES=crun,runc",
                       "PYTHONDONTWRITEBYTECODE=1",
                       "sh", "-c", f'cd "$0" && exec .venv/bin/pytest -p no:cacheprovider -rfEs '
                       f'{" ".join(SUITE)}', str(rootlab.REPO), check=False, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    no_cni = f"podman {stack.podman} has no CNI backend: tests/podman/test_cni.py deselected"
    assert no_cni in out, out
    (summary,) = re.findall(r"^=+ (.*) in [\d.]+s.* =+$", out, re.MULTILINE)
    counts = dict((word, int(n)) for n, word in re.findall(r"(\d+) (\w+)", summary))
    # Nothing skipped or failed, and test_podman.py's 20 ran under each runtime.
    assert set(counts) == {"passed", "deselected"} and counts["passed"] >= 40, summary
