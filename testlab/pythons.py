"""Interpreters of a given Python version, found as the Makefile's
find-python finds them: pyenv's newest build of that version (`pyenv
root`, else /root/.pyenv: pyenv may be installed but not on PATH), else
pythonX.Y on PATH.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from testlab import commands


def find(version: str) -> str | None:
    """A Python `version` ("3.9") interpreter, or None."""
    pyenv = shutil.which("pyenv")
    roots = [commands.run(pyenv, "root").stdout.strip()] if pyenv else []
    found = sorted(str(p) for root in (*roots, "/root/.pyenv")
                   for p in Path(root).glob(f"versions/{version}*/bin/python{version}"))
    return found[-1] if found else shutil.which(f"python{version}")
