"""Tests that need the real kernel never skip under CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import debs
from .settings import ci


def require(ok: bool, why: str) -> None:
    """Skip a test whose prerequisites are missing; under CI=true, fail it."""
    if ok:
        return
    if ci():
        pytest.fail(f"{why} (CI=true: this test must run, not skip)")
    pytest.skip(why)


def required_deb() -> Path:
    """dist/'s deb, as new as the sources, for a test: one missing or
    older than a source is a skip (a failure under CI=true) saying why."""
    found = debs.find_deb()
    require(found is not None, f"needs dist/{debs.DEB_GLOB} (make deb)")
    assert found is not None
    newer = debs.stale(found)
    require(newer is None, f"{found.name} is older than {newer}: make deb")
    return found
