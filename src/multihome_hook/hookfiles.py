"""Is a file of a hooks directory a hook podman accepts, and if not, what
does podman do with it?

Podman reads every `*.json` of each hooks directory when it creates a
container. The rules are podman's (pkg/hooks: schema 1.0.0, and the legacy
0.1.0): a known `version`; `hook.path` an existing file, which the runtime
executes (a regular, executable file); `stages` among the OCI runtime's;
`when` with at least one condition, whose patterns are Go regular
expressions (RE2: no look-around, no back-references).

What each fault does, measured with podman 4.3 and crun (tests/rootlab/
test_lab_hooks_dir.py): a file podman cannot parse or validate stops every
container of the host; a missing program drops that hook alone; a program
the runtime cannot execute stops every container the hook matches; no
condition at all, and the hook never runs.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

STAGES = frozenset({"prestart", "createRuntime", "createContainer", "startContainer",
                    "poststart", "poststop"})
_CONDITIONS = ("always", "annotations", "commands", "hasBindMounts")
# What Python's re accepts and RE2 (Go's regexp) refuses.
_NOT_RE2 = re.compile(r"\(\?<?[=!]|\\[1-9]")
# What podman, or the runtime, does with a hook file that has the fault.
REFUSED = "podman refuses every container"
SKIPPED = "podman leaves this hook out"
FAILS = "every container it matches fails to start"
NEVER = "it never runs"


def _regex(pattern: object, what: str) -> list[str]:
    if not isinstance(pattern, str):
        return [f"{what}: not a string: {REFUSED}"]
    try:
        re.compile(pattern)
    except re.error as e:
        return [f"{what} {pattern!r}: invalid regular expression ({e}): {REFUSED}"]
    if _NOT_RE2.search(pattern):
        return [f"{what} {pattern!r}: look-around or back-reference, which Go's regexp "
                f"refuses: {REFUSED}"]
    return []


def _strings(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return [f"{what}: not a list of strings: {REFUSED}"]
    return []


def _program(path: object, root: Path) -> list[str]:
    """hook.path: what the runtime executes (`root`: where / is)."""
    if not isinstance(path, str) or not path:
        return [f"missing hook.path: {REFUSED}"]
    if not path.startswith("/"):
        return [f"hook.path {path}: not absolute: {SKIPPED} or {FAILS}"]
    try:
        mode = (root / path.lstrip("/")).stat().st_mode
    except OSError as e:
        return [f"hook.path {path}: {(e.strerror or str(e)).lower()}: {SKIPPED}"]
    if not stat.S_ISREG(mode):
        return [f"hook.path {path}: not a regular file: {FAILS}"]
    if not mode & 0o111:
        return [f"hook.path {path}: not executable: {FAILS}"]
    return []


def _stages(stages: object) -> list[str]:
    if stages is None:
        return [f"missing stages: {REFUSED}"]
    if problems := _strings(stages, "stages"):
        return problems
    assert isinstance(stages, list)
    return [f"unknown stage {s!r} (one of {', '.join(sorted(STAGES))}): {REFUSED}"
            for s in stages if s not in STAGES]


def _when(when: object) -> list[str]:
    if not isinstance(when, dict) or not any(key in when for key in _CONDITIONS):
        return [f"no when condition ({', '.join(_CONDITIONS)}): {NEVER}"]
    problems = [f"when.{key}: not true or false: {REFUSED}" for key in ("always", "hasBindMounts")
                if key in when and not isinstance(when[key], bool)]
    annotations = when.get("annotations", {})
    if not isinstance(annotations, dict):
        problems.append(f"when.annotations: not an object: {REFUSED}")
    else:
        for key, value in annotations.items():
            problems += _regex(key, "when.annotations key")
            problems += _regex(value, f"when.annotations[{key!r}]")
    commands = when.get("commands", [])
    if problems_ := _strings(commands, "when.commands"):
        return problems + problems_
    for command in commands:
        problems += _regex(command, "when.commands")
    return problems


def _current(hook: dict[str, object], root: Path) -> list[str]:
    """Schema 1.0.0."""
    program = hook.get("hook")
    if not isinstance(program, dict):
        return [f"missing hook (an object with path): {REFUSED}", *_stages(hook.get("stages"))]
    problems = _program(program.get("path"), root)
    for key in ("args", "env"):
        if key in program:
            problems += _strings(program[key], f"hook.{key}")
    timeout = program.get("timeout")
    if timeout is not None and type(timeout) is not int:
        problems.append(f"hook.timeout: not a whole number of seconds: {REFUSED}")
    return problems + _when(hook.get("when")) + _stages(hook.get("stages"))


def _legacy(hook: dict[str, object], root: Path) -> list[str]:
    """Schema 0.1.0: with no condition at all, podman runs it always."""
    problems = _program(hook.get("hook"), root) + _stages(hook.get("stage", []))
    for key in ("cmds", "annotations"):
        values = hook.get(key, [])
        if problems_ := _strings(values, key):
            problems += problems_
            continue
        assert isinstance(values, list)
        for value in values:
            problems += _regex(value, key)
    return problems


def problems(text: str, root: Path = Path("/")) -> list[str]:
    """What is wrong with this hook file's `text` for podman, one line each
    ending with what podman then does; none for a valid hook. `root`: where
    its hook.path is looked up."""
    try:
        hook = json.loads(text)
    except ValueError as e:
        return [f"not JSON ({e}): {REFUSED}"]
    if not isinstance(hook, dict):
        return [f"not a JSON object: {REFUSED}"]
    version = hook.get("version")
    if version == "1.0.0":
        return _current(hook, root)
    if version == "0.1.0":
        return _legacy(hook, root)
    return [f"unknown version {version!r} (podman knows 1.0.0 and 0.1.0): {REFUSED}"]


def invalid(directories: Iterable[str]) -> list[tuple[str, str]]:
    """Every (file, problem) in the hooks `directories` podman reads (a
    missing directory is no problem)."""
    found = []
    for directory in directories:
        try:
            names = sorted(os.listdir(directory))
        except FileNotFoundError:
            continue
        except OSError as e:
            found.append((directory, f"cannot be read ({e.strerror or e}): {REFUSED}"))
            continue
        for name in names:
            path = os.path.join(directory, name)
            if not name.endswith(".json"):
                continue
            try:
                text = Path(path).read_text()
            except FileNotFoundError:  # a dangling symlink: podman skips it too
                continue
            except (OSError, UnicodeDecodeError) as e:
                found.append((path, f"cannot be read ({getattr(e, 'strerror', None) or e}): "
                                    f"{REFUSED}"))
                continue
            found += [(path, problem) for problem in problems(text)]
    return found
