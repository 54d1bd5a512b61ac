"""The deb the root labs install: the one `make deb` left in dist/, as new
as the sources it was built from."""

from __future__ import annotations

from pathlib import Path

from . import commands

DEB_GLOB = "oci-multihome-hook_*_all.deb"


def find_deb() -> Path | None:
    """The deb `make deb` left in dist/, if any (the newest)."""
    debs = sorted((commands.REPO / "dist").glob(DEB_GLOB), key=lambda p: p.stat().st_mtime)
    return debs[-1] if debs else None


# What went into the deb: a deb older than any of these tests old code.
_DEB_SOURCES = ("src", "hook", "oci-hooks.d", "packaging", "pyproject.toml", "setup.cfg")


def stale(deb: Path) -> str | None:
    """A source file newer than `deb` (relative to the checkout), or None."""
    for name in _DEB_SOURCES:
        top = commands.REPO / name
        for path in [top, *top.rglob("*")] if top.is_dir() else [top]:
            # Not pip's egg-info, which every editable install rewrites.
            if (path.is_file() and "__pycache__" not in path.parts
                    and not any(part.endswith(".egg-info") for part in path.parts)
                    and path.stat().st_mtime > deb.stat().st_mtime):
                return str(path.relative_to(commands.REPO))
    return None
