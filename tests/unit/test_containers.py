"""containers.find reads podman's answers by exit status: a fake podman
on PATH stands for the cases a real one rarely shows on demand."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from multihome_hook import containers
from multihome_hook.errors import HookError

# `podman inspect` fails with MESSAGE; `podman container exists` exits EXISTS.
FAKE = """#!/bin/sh
if [ "$1" = inspect ]; then echo "Error: {message}" >&2; exit 125; fi
if [ "$1 $2" = "container exists" ]; then exit {exists}; fi
exit 99
"""


@pytest.fixture
def fake_podman(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, int], None]:
    def make(message: str, exists: int) -> None:
        podman = tmp_path / "podman"
        podman.write_text(FAKE.format(message=message, exists=exists))
        podman.chmod(0o755)
        monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    return make


def test_no_such_container_is_podmans_exit_status(
        fake_podman: Callable[[str, int], None]) -> None:
    fake_podman("no container with name or ID \"web\" found: no such container", 1)
    with pytest.raises(HookError, match=r"^no such container$"):
        containers.find("web")


def test_a_storage_error_is_not_taken_for_a_missing_container(
        fake_podman: Callable[[str, int], None]) -> None:
    message = "reading /var/lib/containers/storage/db.sql: no such file or directory"
    fake_podman(message, 125)
    with pytest.raises(HookError, match=r"^podman inspect: Error: reading .*no such file"):
        containers.find("web")
