"""Hook files as podman judges them (hookfiles.py): the shipped JSON is a
valid hook once its program is installed; each way to break one is named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from multihome_hook.hookfiles import FAILS, NEVER, REFUSED, SKIPPED, invalid, problems

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "oci-hooks.d" / "oci-multihome-hook.json"
LAUNCHER = "usr/libexec/oci/hooks.d/oci-multihome-hook"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A root with the launcher where the packages install it."""
    program = tmp_path / LAUNCHER
    program.parent.mkdir(parents=True)
    shutil.copy2(REPO / "hook" / "oci-multihome-hook", program)
    program.chmod(0o755)
    return tmp_path


def hook(**changes: object) -> str:
    """The shipped hook with top-level keys changed (None: removed)."""
    document = json.loads(SHIPPED.read_text())
    for key, value in changes.items():
        if value is None:
            document.pop(key)
        else:
            document[key] = value
    return json.dumps(document)


def test_the_shipped_hook_is_valid_once_installed(root: Path) -> None:
    assert problems(SHIPPED.read_text(), root) == []


def test_its_program_missing_or_not_executable(root: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    path = f"/{LAUNCHER}"
    assert problems(SHIPPED.read_text(), empty) == [
        f"hook.path {path}: no such file or directory: {SKIPPED}"]
    (root / LAUNCHER).chmod(0o644)
    assert problems(SHIPPED.read_text(), root) == [f"hook.path {path}: not executable: {FAILS}"]
    (root / LAUNCHER).unlink()
    (root / LAUNCHER).mkdir()
    assert problems(SHIPPED.read_text(), root) == [
        f"hook.path {path}: not a regular file: {FAILS}"]
    relative = {"path": "oci-multihome-hook"}
    assert problems(hook(hook=relative), root) == [
        f"hook.path oci-multihome-hook: not absolute: {SKIPPED} or {FAILS}"]


@pytest.mark.parametrize(("changes", "reason"), [
    ({"version": "2.0.0"}, f"unknown version '2.0.0' (podman knows 1.0.0 and 0.1.0): {REFUSED}"),
    ({"version": None}, f"unknown version None (podman knows 1.0.0 and 0.1.0): {REFUSED}"),
    ({"stages": None}, f"missing stages: {REFUSED}"),
    ({"stages": ["createruntime"]}, "unknown stage 'createruntime' (one of createContainer, "
     f"createRuntime, poststart, poststop, prestart, startContainer): {REFUSED}"),
    ({"when": {}}, f"no when condition (always, annotations, commands, hasBindMounts): {NEVER}"),
    ({"when": {"always": "yes"}}, f"when.always: not true or false: {REFUSED}"),
    ({"when": {"annotations": {"^io\\.multihome\\.mode$": "(unclosed"}}},
     "when.annotations['^io\\\\.multihome\\\\.mode$'] '(unclosed': invalid regular expression "
     f"(missing ), unterminated subpattern at position 0): {REFUSED}"),
    ({"when": {"commands": ["^(?!sh).*"]}},
     "when.commands '^(?!sh).*': look-around or back-reference, which Go's regexp refuses: "
     + REFUSED),
    ({"hook": {"path": "/usr/libexec/oci/hooks.d/oci-multihome-hook", "timeout": 1.5}},
     f"hook.timeout: not a whole number of seconds: {REFUSED}"),
])
def test_each_broken_part_is_named(root: Path, changes: dict[str, object], reason: str) -> None:
    assert problems(hook(**changes), root) == [reason]


def test_not_json_or_not_an_object(root: Path) -> None:
    (reason,) = problems('{"version": "1.0.0",}', root)
    assert reason.startswith("not JSON (") and reason.endswith(f"): {REFUSED}")
    assert problems("[]", root) == [f"not a JSON object: {REFUSED}"]


def test_the_legacy_schema(root: Path) -> None:
    legacy = {"version": "0.1.0", "hook": f"/{LAUNCHER}", "stage": ["prestart"],
              "annotations": ["^io\\.multihome\\."]}
    assert problems(json.dumps(legacy), root) == []
    legacy["stage"] = ["later"]
    assert problems(json.dumps(legacy), root)[0].startswith("unknown stage 'later'")


def test_every_invalid_file_of_the_directories_podman_reads(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks.d"
    hooks.mkdir()
    (hooks / "README").write_text("not a hook: podman reads *.json only")
    (hooks / "broken.json").write_text("{")
    (hooks / "gone.json").symlink_to(tmp_path / "nowhere.json")  # podman skips it too
    program = tmp_path / "uninstalled"
    (hooks / "ours.json").write_text(hook(hook={"path": str(program)}))
    found = invalid([str(tmp_path / "missing"), str(hooks)])
    assert [(Path(path).name, reason.split(" (")[0].split(":")[0]) for path, reason in found] == [
        ("broken.json", "not JSON"), ("ours.json", f"hook.path {program}")]
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    assert [Path(path).name for path, _ in invalid([str(hooks)])] == ["broken.json"]
