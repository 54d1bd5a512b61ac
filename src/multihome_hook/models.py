"""pydantic models for what the CLI reads (podman's JSON) and writes (--json).

Works with pydantic 1.8.2 (Ubuntu 22.04), 1.10 (RHEL 9, Debian 12) and 2.x.
Never imported by the hook itself: building these models costs 50-140 ms.

pydantic evaluates the field annotations at run time, so they are written
for the oldest Python supported (3.9): Optional[X], not `X | None`, and
without `from __future__ import annotations` (with it, ruff's pyupgrade rules
would take them for annotations that are never evaluated).
"""

from typing import Literal, Optional, TypeVar

import pydantic
from pydantic import BaseModel, Field

_V2 = pydantic.VERSION.startswith("2")
M = TypeVar("M", bound=BaseModel)
# 2: per container `status` and `error` (a container that could not be
# diagnosed is reported in place), `pid`, `healthy` and `rp_filter_all` may
# be null, interfaces name their podman `network`. 3: status `risk`;
# `findings` (severity, kind, text), with `risks` and `limits` beside
# `problems` and `notes`.
SCHEMA_VERSION = 3
APPLY_SCHEMA_VERSION = 1


# The ignores: `make lint` type-checks for Python 3.9 against pydantic 1.10,
# which lacks the pydantic 2 names.


def parse(cls: type[M], data: object) -> M:
    """Validate `data` into `cls` (raises pydantic.ValidationError)."""
    if _V2:
        return cls.model_validate(data)  # type: ignore[attr-defined,no-any-return,unused-ignore]
    return cls.parse_obj(data)


def to_json(model: BaseModel) -> str:
    if _V2:
        return model.model_dump_json(indent=2)  # type: ignore[attr-defined,no-any-return,unused-ignore]
    return model.json(indent=2)


# --- podman's JSON (only the fields we use; the rest is ignored) -----------


# Field names are podman's, through aliases: `Config` would clash with
# pydantic 1's model configuration class.


class PodmanState(BaseModel):
    pid: int = Field(alias="Pid")
    running: bool = Field(alias="Running")


class PodmanConfig(BaseModel):
    annotations: Optional[dict[str, str]] = Field(None, alias="Annotations")


class PodmanNetwork(BaseModel):
    """The container's address on one network ("" when it has none)."""

    ip_address: str = Field("", alias="IPAddress")
    ip_prefix_len: int = Field(0, alias="IPPrefixLen")
    ipv6_address: str = Field("", alias="GlobalIPv6Address")
    ipv6_prefix_len: int = Field(0, alias="GlobalIPv6PrefixLen")


class PodmanPortBinding(BaseModel):
    host_ip: str = Field("", alias="HostIp")
    host_port: str = Field("", alias="HostPort")


class PodmanNetworkSettings(BaseModel):
    networks: Optional[dict[str, PodmanNetwork]] = Field(None, alias="Networks")
    # "8080/tcp" -> where the host publishes it (None: exposed, not published)
    ports: Optional[dict[str, Optional[list[PodmanPortBinding]]]] = Field(None, alias="Ports")


class PodmanContainer(BaseModel):
    """One element of `podman inspect --type container`."""

    id: str = Field(alias="Id")
    name: str = Field(alias="Name")
    state: PodmanState = Field(alias="State")
    config: PodmanConfig = Field(alias="Config")
    network_settings: Optional[PodmanNetworkSettings] = Field(None, alias="NetworkSettings")


class PodmanEvent(BaseModel):
    """One line of `podman events --format json`."""

    id: str = Field("", alias="ID")
    type: str = Field("", alias="Type")
    status: str = Field("", alias="Status")
    network: str = Field("", alias="network")  # of a connect or disconnect


class PodmanNetworkInspect(BaseModel):
    """One element of `podman network inspect` (netavark's format, also
    with the CNI backend)."""

    name: str
    driver: str = ""  # bridge, macvlan, ipvlan...
    network_interface: str = ""  # a bridge's on the host (podman1, cni-podman1)
    internal: bool = False


class PodmanBackendInfo(BaseModel):
    version: Optional[str] = None


class PodmanRuntime(BaseModel):
    name: Optional[str] = None


class PodmanHost(BaseModel):
    network_backend: Optional[str] = Field(None, alias="networkBackend")
    # podman >= 4.5 only
    network_backend_info: PodmanBackendInfo = Field(default_factory=PodmanBackendInfo,
                                                    alias="networkBackendInfo")
    oci_runtime: PodmanRuntime = Field(default_factory=PodmanRuntime, alias="ociRuntime")


class PodmanVersion(BaseModel):
    version: str = Field("", alias="Version")


class PodmanInfo(BaseModel):
    """`podman info --format json`: what doctor reads of it."""

    host: Optional[PodmanHost] = None
    version: Optional[PodmanVersion] = None


# --- `diagnose --json` ------------------------------------------------------


class InterfaceReport(BaseModel):
    name: str
    network: Optional[str]  # podman's name for it, where known
    addresses: list[str]
    rp_filter: int
    effective_rp_filter: int  # max(all, interface): what the kernel applies


class RouteReport(BaseModel):
    family: Literal["ipv4", "ipv6"]
    dev: str
    gateway: Optional[str]
    metric: int


Status = Literal["healthy", "risk", "problem", "error", "host-network"]


class FindingReport(BaseModel):
    """One claim about packets (diagnosis.py): `severity` problem (dropped
    now), risk (gets through only because nothing checks sources), limit
    (the mode's trade), note; `kind` for a problem or risk: outbound,
    address, port, no-default."""

    severity: Literal["problem", "risk", "limit", "note"]
    kind: Optional[str] = None
    text: str


class ContainerReport(BaseModel):
    container: str  # as given on the command line
    id: Optional[str]
    pid: Optional[int]
    status: Status
    error: Optional[str] = None  # status "error": why it was not diagnosed
    mode_annotation: Optional[str] = None
    interfaces: list[InterfaceReport] = []
    rp_filter_all: Optional[int] = None
    default_routes: list[RouteReport] = []
    healthy: Optional[bool] = None  # no problem; null: not diagnosed (error, host-network)
    findings: list[FindingReport] = []
    problems: list[str] = []  # the findings' texts, by severity
    risks: list[str] = []
    limits: list[str] = []
    notes: list[str] = []
    fixes: dict[str, list[str]] = {}  # mode -> the changes it would make now


class DiagnoseReport(BaseModel):
    schema_version: int = SCHEMA_VERSION
    containers: list[ContainerReport]
    error: Optional[str] = None  # --all: why no container could be listed


# --- `apply --json`: schema version 1 ---------------------------------------


ApplyStatus = Literal["applied", "unchanged", "planned", "error"]


class ApplyResult(BaseModel):
    container: str  # as given on the command line
    id: Optional[str]
    pid: Optional[int]
    status: ApplyStatus
    error: Optional[str] = None
    mode: str
    primary: Optional[str]  # as given (--primary or the annotation)
    dry_run: bool
    changes: list[str] = []
    skipped: Optional[str] = None  # why nothing was needed
    lasts: str = "until the container is restarted or recreated"
    permanent: list[str] = []  # the annotations that make it so


class ApplyReport(BaseModel):
    schema_version: int = APPLY_SCHEMA_VERSION
    containers: list[ApplyResult]


# --- `doctor --json`: schema version 1 --------------------------------------

# 2: `affected` may be null (unknown), networks carry `host_rp_filter`.
DOCTOR_SCHEMA_VERSION = 2


class DoctorNetwork(BaseModel):
    name: str
    driver: str
    host_rp_filter: Optional[int] = None  # a bridge's, on the host; null: not made yet


class DoctorHookFile(BaseModel):
    path: str
    reason: str  # what is wrong with it, and what podman then does


class DoctorReport(BaseModel):
    schema_version: int = DOCTOR_SCHEMA_VERSION
    rp_filter_all: int
    rp_filter_default: int
    effective_rp_filter: int  # max(all, default): what a new container's interfaces get
    podman: Optional[str]  # its version; null: not installed
    network_backend: Optional[str]
    network_backend_version: Optional[str]
    runtime: Optional[str]
    networks: list[DoctorNetwork] = []
    hooks_dirs: list[str] = []  # where this podman reads hooks
    hook_installed_in: list[str] = []
    invalid_hooks: list[DoctorHookFile] = []
    default_mode: Optional[str] = None  # containers.conf annotations
    affected: Optional[bool]  # null: unknown (no podman on PATH)
    reasons: list[str] = []
    notes: list[str] = []
    next: str
