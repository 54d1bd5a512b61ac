"""Running a command for the labs: captured, and a clear error when it fails."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# For make and apt-get: they may install packages, and wait up to 10
# minutes for the dpkg lock of another apt (tests run side by side).
APT_TIMEOUT = 1200


def run(*argv: str, check: bool = True, env: dict[str, str] | None = None,
        stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output; raise with stderr shown on failure."""
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, input=stdin,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} -> {proc.returncode}: {proc.stderr.strip()}")
    return proc
