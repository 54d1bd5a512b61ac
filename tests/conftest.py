"""Fixtures shared by every test directory."""

from __future__ import annotations

import os
import shutil

import pytest

from testlab.policy import require


@pytest.fixture
def root() -> None:
    require(os.geteuid() == 0, "needs root")
    require(shutil.which("ip") is not None, "needs iproute2")
