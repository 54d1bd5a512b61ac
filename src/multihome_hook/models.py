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
SCHEMA_VERSION = 1


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


class PodmanContainer(BaseModel):
    """One element of `podman inspect --type container`."""

    id: str = Field(alias="Id")
    name: str = Field(alias="Name")
    state: PodmanState = Field(alias="State")
    config: PodmanConfig = Field(alias="Config")


class PodmanEvent(BaseModel):
    """One line of `podman events --format json`."""

    id: str = Field("", alias="ID")
    type: str = Field("", alias="Type")
    status: str = Field("", alias="Status")
    network: str = Field("", alias="network")  # of a connect or disconnect


class PodmanSubnet(BaseModel):
    subnet: str


class PodmanNetwork(BaseModel):
    """One element of `podman network inspect` (netavark's format, also
    with the CNI backend)."""

    name: str
    subnets: list[PodmanSubnet] = []  # pydantic copies a default, unlike a class


# --- `diagnose --json`: schema version 1 ------------------------------------


class InterfaceReport(BaseModel):
    name: str
    addresses: list[str]
    rp_filter: int
    effective_rp_filter: int  # max(all, interface): what the kernel applies


class RouteReport(BaseModel):
    family: Literal["ipv4", "ipv6"]
    dev: str
    gateway: Optional[str]
    metric: int


class ContainerReport(BaseModel):
    container: str  # as given on the command line
    id: Optional[str]
    pid: int
    mode_annotation: Optional[str]
    interfaces: list[InterfaceReport]
    rp_filter_all: int
    default_routes: list[RouteReport]
    healthy: bool
    problems: list[str]
    notes: list[str]
    fixes: dict[str, list[str]]  # mode -> the changes it would make now


class DiagnoseReport(BaseModel):
    schema_version: int = SCHEMA_VERSION
    containers: list[ContainerReport]
