"""Find running containers: podman names and ids, or `pid:N`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from .errors import HookError, NoNamespace
from .models import PodmanContainer, PodmanEvent, PodmanNetwork, parse
from .modes import MODE_KEY, RP_FILTER_KEY, parse_strict
from .networks import definitions, directories
from .primary import PRIMARY_KEY, attached, parse_primary

if TYPE_CHECKING:
    from .kernel import Routing
    from .modes import Mode
    from .primary import Networks, Primary


class Target(NamedTuple):
    ref: str  # as the user gave it
    pid: int
    id: str | None = None
    annotations: Mapping[str, str] = MappingProxyType({})
    # Its podman networks, from podman inspect (pid:N: None, podman's
    # definitions tell).
    networks: Networks | None = None
    # Its published ports, "HOSTPORT->PORT/PROTO" (pid:N: unknown, none).
    ports: tuple[str, ...] = ()

    @property
    def mode(self) -> str | None:
        return self.annotations.get(MODE_KEY)

    @property
    def primary(self) -> str | None:
        return self.annotations.get(PRIMARY_KEY)

    def primary_given(self, given: str | None) -> Primary | None:
        """The primary `given` (else the container's annotation), parsed."""
        value = given if given is not None else self.primary
        return None if value is None else parse_primary(value)

    def attached(self, routing: Routing) -> dict[int, str]:
        """Interface index -> its podman network's name, where known."""
        return attached(routing, definitions(directories()) if self.networks is None
                        else self.networks)

    def strict(self, mode: Mode) -> bool:
        """io.multihome.rp_filter, for `mode`."""
        return parse_strict(self.annotations.get(RP_FILTER_KEY), mode)

    def __str__(self) -> str:
        return self.ref if self.id is None else f"{self.ref} ({self.id[:12]})"


NO_PODMAN = ("podman is not on PATH (a CRI-O node, sudo's secure_path?): name a container "
             "as pid:N, its process id on the host")


# How long a podman command may take: one that hangs (a stuck storage
# lock) must fail, not stall whoever asked (watch's other containers).
TIMEOUT_S = 60.0


class NoPodman(HookError):
    """podman could not be run at all."""


class Gone(NoNamespace):
    """The container is not there, or not running (any more): no namespace."""


def _run(argv: tuple[str, ...], timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["podman", *argv], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise NoPodman(NO_PODMAN) from None
    except subprocess.TimeoutExpired:
        raise HookError(f"podman {argv[0]}: no answer within {timeout:.0f} s") from None


def podman(*argv: str, timeout: float = TIMEOUT_S) -> str:
    """podman's standard output, or its last line of error as a HookError."""
    proc = _run(argv, timeout)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise HookError(f"podman {argv[0]}: {lines[-1] if lines else f'exit {proc.returncode}'}")
    return proc.stdout


def _exit_status(*argv: str, timeout: float = TIMEOUT_S) -> int:
    return _run(argv, timeout).returncode


def find(ref: str, timeout: float = TIMEOUT_S) -> Target:
    """A container by podman name or id, or a process by `pid:N`; each
    podman command bounded by `timeout` (s). Errors do not name `ref`: the
    caller puts it in front."""
    if ref.startswith("pid:"):
        pid = ref[4:]
        if not pid.isdecimal() or int(pid) <= 0:
            raise HookError("invalid: expected a podman name or id, or pid:NUMBER")
        return Target(ref, int(pid))
    try:
        (raw,) = json.loads(podman("inspect", "--type", "container", "--format", "json", ref,
                                   timeout=timeout))
        container = parse(PodmanContainer, raw)
    except NoPodman:
        raise
    except HookError:
        # podman's answer by its exit status, not its message's wording:
        # `container exists` is 1 for no such container, 125 when podman
        # itself fails (storage broken...), which the first error says.
        if _exit_status("container", "exists", ref, timeout=timeout) != 1:
            raise
        raise Gone("no such container") from None
    except ValueError as exc:  # also pydantic's ValidationError
        raise HookError(f"unexpected podman inspect output: {exc}") from None
    if not container.state.running or container.state.pid <= 0:
        raise Gone("not running")
    settings = container.network_settings
    ports = tuple(f"{binding.host_port}->{port}" for port, bindings in
                  sorted(((settings and settings.ports) or {}).items())
                  for binding in bindings or () if binding.host_port)
    return Target(ref, container.state.pid, container.id, container.config.annotations or {},
                  _networks_of((settings and settings.networks) or {}), tuple(dict.fromkeys(ports)))


def _networks_of(networks: Mapping[str, PodmanNetwork]) -> Networks:
    """Network name -> the subnets of the container's addresses on it."""
    import ipaddress

    return tuple(
        (name, tuple(ipaddress.ip_network(f"{address}/{length}", strict=False)
                     for address, length in ((n.ip_address, n.ip_prefix_len),
                                             (n.ipv6_address, n.ipv6_prefix_len))
                     if address))
        for name, n in sorted(networks.items()))


def running() -> list[str]:
    """Names of every running container."""
    return podman("ps", "--format", "{{.Names}}").split()


def events() -> Iterator[PodmanEvent]:
    """What `watch` reads, as podman reports it: a network connected to or
    disconnected from a container, a container started, died or removed
    (runs until podman stops)."""
    try:
        proc = subprocess.Popen(["podman", "events", "--format", "json", "--filter",
                                 "type=network", "--filter", "type=container"],
                                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    except FileNotFoundError:
        raise NoPodman("podman is not on PATH: watch follows its events") from None
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            event = watched(line)
            if event is not None:
                yield event
    finally:  # `podman events` never ends by itself
        proc.terminate()
        proc.wait(timeout=10)
    raise HookError(f"podman events exited with status {proc.returncode}")


# What watch acts on, and a container's end (its events still waiting are
# then dropped).
_WATCHED = {("network", "connect"), ("network", "disconnect"), ("container", "start"),
            ("container", "died"), ("container", "remove")}


def watched(line: str) -> PodmanEvent | None:
    """One line of `podman events --format json`, if `watch` reads it.
    Only ID, Type, Status and network are read: podman 4 and 5 spell them
    alike (their times differ: 4 `Time`, an RFC 3339 string; 5 `time`, in
    seconds, and `timeNano`)."""
    try:
        event = parse(PodmanEvent, json.loads(line))
    except ValueError:  # also pydantic's ValidationError
        return None
    return event if event.id and (event.type, event.status) in _WATCHED else None
