"""The hook's input: the OCI state on stdin and the annotations that steer it.

The state is a handful of fields, checked here with the standard library:
building pydantic models costs 56 ms (pydantic 1.10) to 140 ms (2.x) at
start-up, more than everything else the hook does, on every `podman run`.
Nothing here imports `typing` at run time, for the same reason (records.py).
"""

from __future__ import annotations

import json
import re

from .errors import HookError
from .records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ipaddress
    from typing import Literal

    Mode = Literal["loose", "one-default", "source-routing", "off"]

MODE_KEY = "io.multihome.mode"
PRIMARY_KEY = "io.multihome.primary"
MODES: tuple[Mode, ...] = ("loose", "one-default", "source-routing", "off")
MAX_STATE_BYTES = 1 << 20
# Kernel names are at most 15 bytes and never contain '/'; we accept the
# conventional subset so that nothing odd ever reaches a message or a path.
_IFNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}")
# runc's rule for container ids; it also keeps ids one-line in our messages.
_CONTAINER_ID = re.compile(r"[A-Za-z0-9_+.-]{1,1024}")


class Interface(Record):
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return f"interface {self.name}"


class Subnet(Record):
    __slots__ = ("network",)

    def __init__(self, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> None:
        self.network = network

    def __str__(self) -> str:
        return f"subnet {self.network}"


class Gateway(Record):
    __slots__ = ("address",)

    def __init__(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
        self.address = address

    def __str__(self) -> str:
        return f"gateway {self.address}"


if TYPE_CHECKING:
    from typing import Union

    Primary = Union[Interface, Subnet, Gateway]  # not `A | B`: Python 3.9


class Request(Record):
    __slots__ = ("container_id", "mode", "pid", "primary")

    def __init__(self, container_id: str, pid: int, mode: Mode, primary: Primary | None) -> None:
        self.container_id, self.pid, self.mode, self.primary = container_id, pid, mode, primary


def shown(value: str) -> str:
    """A user-supplied value, safe to put in a one-line message."""
    return repr(value if len(value) <= 64 else value[:61] + "...")


def parse_mode(value: str) -> Mode:
    for mode in MODES:
        if value == mode:
            return mode
    raise HookError(f"unknown {MODE_KEY} {shown(value)}: expected one of {', '.join(MODES)}")


def parse_primary(value: str) -> Primary:
    """An interface name, a subnet in CIDR form, or a gateway address."""
    import ipaddress  # ~6 ms: only when a primary is given

    try:
        return Gateway(ipaddress.ip_address(value))
    except ValueError:
        pass
    if "/" in value:
        try:
            return Subnet(ipaddress.ip_network(value, strict=False))
        except ValueError:
            pass
    elif _IFNAME.fullmatch(value) and value not in (".", ".."):
        return Interface(value)
    raise HookError(f"invalid {PRIMARY_KEY} {shown(value)}: expected an interface name, "
                    "a subnet (198.18.10.0/24) or a gateway address")


def parse_state(raw: bytes) -> Request:
    """Validate the OCI state podman passes on stdin."""
    if not raw.strip():
        raise HookError("empty OCI state on stdin (this program is run by podman as an OCI hook)")
    if len(raw) > MAX_STATE_BYTES:
        raise HookError(f"OCI state on stdin is larger than {MAX_STATE_BYTES} bytes")
    try:
        state = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise HookError(f"malformed OCI state on stdin: {exc}") from None
    if not isinstance(state, dict):
        raise HookError("malformed OCI state on stdin: not a JSON object")
    container_id = state.get("id")
    if not isinstance(container_id, str) or not _CONTAINER_ID.fullmatch(container_id):
        raise HookError("malformed OCI state: 'id' is missing or not a container id")
    pid = state.get("pid")
    if pid is None:
        raise HookError(f"container {container_id[:12]}: OCI state has no pid (process gone?)")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        raise HookError(f"container {container_id[:12]}: OCI state has an invalid pid")
    annotations = state.get("annotations")
    if annotations is None:
        annotations = {}
    if not isinstance(annotations, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()):
        raise HookError("malformed OCI state: 'annotations' is not a map of strings")
    primary = annotations.get(PRIMARY_KEY)
    return Request(container_id=container_id, pid=pid,
                   # Only a hooks.d entry other than ours runs us without the
                   # annotation: then there is nothing asked of us.
                   mode=parse_mode(annotations.get(MODE_KEY, "off")),
                   primary=None if primary is None else parse_primary(primary))
