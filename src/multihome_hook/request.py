"""The hook's input: the OCI state on stdin and the annotations that steer it.

The state is a handful of fields, checked here with the standard library:
building pydantic models costs 56 ms (pydantic 1.10) to 140 ms (2.x) at
start-up, more than everything else the hook does, on every `podman run`.
Nothing here imports `typing` at run time, for the same reason (records.py).
"""

from __future__ import annotations

from .errors import HookError, InvalidState
from .modes import MODE_KEY, RP_FILTER_KEY, parse_mode, parse_strict
from .primary import PRIMARY_KEY, parse_primary
from .records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .modes import Mode
    from .primary import Primary

MAX_STATE_BYTES = 1 << 20
# runc's rule for container ids; it also keeps ids one-line in our messages.
# A set, not a regular expression: compiling one costs ~0.1 ms per run.
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+.-")


class Request(Record):
    __slots__ = ("container_id", "pid", "mode", "primary", "strict")

    def __init__(self, container_id: str, pid: int, mode: Mode, primary: Primary | None,
                 strict: bool = False) -> None:
        self.container_id, self.pid, self.mode, self.primary = container_id, pid, mode, primary
        self.strict = strict


class _Decoding:
    """What CPython's JSON scanner reads of a decoder: json.loads' defaults."""

    strict = True
    object_hook = object_pairs_hook = None
    parse_float, parse_int, parse_constant = float, int, float  # NaN, Infinity


_BLANK = " \t\n\r"


def _loads(text: str) -> object:
    """json.loads() without `import json`, whose decoder imports `re`, and
    with it `enum`, `functools` and `collections` (~4 ms on every `podman
    run`): the C scanner json.decoder itself uses. A state it cannot read
    is read again by json.loads(), for its message (the scanner of Python
    3.10 and 3.11 raises SystemError when json.decoder is not imported)."""
    try:
        from _json import make_scanner

        # typeshed wants a json.decoder instance: the C code reads only these.
        scan: Any = make_scanner
        start = len(text) - len(text.lstrip(_BLANK))
        value, end = scan(_Decoding)(text, start)
        if not text[end:].strip(_BLANK):
            return value
    except (ImportError, StopIteration, ValueError, SystemError):
        pass
    import json

    return json.loads(text)


def parse_state(raw: bytes) -> Request:
    """Validate the OCI state podman passes on stdin."""
    if not raw.strip():
        raise InvalidState("empty OCI state on stdin (this program is run by podman as an OCI "
                           "hook)")
    if len(raw) > MAX_STATE_BYTES:
        raise InvalidState(f"OCI state on stdin is larger than {MAX_STATE_BYTES} bytes")
    try:
        state = _loads(raw.decode())
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidState(f"malformed OCI state on stdin: {exc}") from None
    if not isinstance(state, dict):
        raise InvalidState("malformed OCI state on stdin: not a JSON object")
    container_id = state.get("id")
    if (not isinstance(container_id, str) or not 0 < len(container_id) <= 1024
            or not _ID_CHARS.issuperset(container_id)):
        raise InvalidState("malformed OCI state: 'id' is missing or not a container id")
    pid = state.get("pid")
    if pid is None:
        raise InvalidState(f"container {container_id[:12]}: OCI state has no pid (process gone?)")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        raise InvalidState(f"container {container_id[:12]}: OCI state has an invalid pid")
    annotations = state.get("annotations")
    if annotations is None:
        annotations = {}
    if not isinstance(annotations, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()):
        raise InvalidState(f"container {container_id[:12]}: malformed OCI state: "
                           "'annotations' is not a map of strings")
    primary = annotations.get(PRIMARY_KEY)
    try:
        # Only a hooks.d entry other than ours runs us without the
        # annotation: then there is nothing asked of us.
        mode = parse_mode(annotations.get(MODE_KEY))
        return Request(container_id=container_id, pid=pid, mode=mode,
                       primary=None if primary is None else parse_primary(primary),
                       strict=parse_strict(annotations.get(RP_FILTER_KEY), mode))
    except HookError as exc:
        # Its class is its exit status: keep it; the journal's line names the container.
        raise type(exc)(f"container {container_id[:12]}: {exc}") from None
