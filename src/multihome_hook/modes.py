"""The modes, in one table: each one's name, what it reads and which
planner decides it. The hook, `fix` and the CLI take their modes from here."""

from __future__ import annotations

from . import plan
from .errors import InvalidAnnotation
from .primary import shown
from .records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Optional

    from .kernel import Snapshot
    from .plan import Change
    from .primary import Primary

    # Not `A | None`: mypy reads a type alias as run-time code, for Python 3.9.
    # (snapshot, primary, switch, strict): see plan.py.
    Planner = Callable[[Snapshot, Optional[Primary], bool, bool], list[Change]]

MODE_KEY = "io.multihome.mode"
RP_FILTER_KEY = "io.multihome.rp_filter"
STRICT = "strict"


class Mode(Record):
    """What the planner reads: `rp_filter` (sysctls), `routes` (routes,
    addresses and rules: netlink, so pyroute2 is loaded). The rest of its
    snapshot is left empty."""

    __slots__ = ("name", "summary", "planner", "rp_filter", "routes")

    def __init__(self, name: str, summary: str, planner: Planner, rp_filter: bool = False,
                 routes: bool = False) -> None:
        self.name, self.summary, self.planner = name, summary, planner
        self.rp_filter, self.routes = rp_filter, routes

    def __str__(self) -> str:
        return self.name


def _nothing(snapshot: Snapshot, primary: Primary | None, switch: bool,
             strict: bool) -> list[Change]:
    return []


LOOSE = Mode("loose", "rp_filter 2 (loose) on all, default and every interface; every route "
             "stays", plan.loose, rp_filter=True)
ONE_DEFAULT = Mode("one-default", "one default route per address family, the primary "
                   "network's; strict rp_filter stays", plan.one_default, routes=True)
SOURCE_ROUTING = Mode("source-routing", "a routing table and rules per uplink: every uplink "
                      "keeps working and strict rp_filter stays", plan.source_routing,
                      rp_filter=True, routes=True)
OFF = Mode("off", "change nothing", _nothing)
MODES = (LOOSE, ONE_DEFAULT, SOURCE_ROUTING, OFF)
# Measured: the one mode that fixes every case (inbound on a macvlan, a
# port published beside one on podman 6) with strict filtering kept.
RECOMMENDED = SOURCE_ROUTING
WHY_RECOMMENDED = "every uplink keeps working, strict filtering stays on"
FIXES = MODES[:-1]  # the modes that change something


def parse_mode(value: str) -> Mode:
    for mode in MODES:
        if value == mode.name:
            return mode
    raise InvalidAnnotation(f"unknown {MODE_KEY} {shown(value)}: expected one of "
                            f"{', '.join(m.name for m in MODES)}")


def parse_strict(value: str | None, mode: Mode) -> bool:
    """Whether io.multihome.rp_filter asks for strict filtering back: only
    source routing keeps every uplink working with it."""
    if value is None:
        return False
    if value != STRICT:
        raise InvalidAnnotation(f"invalid {RP_FILTER_KEY} {shown(value)}: expected {STRICT}")
    if mode is not SOURCE_ROUTING:
        raise InvalidAnnotation(f"{RP_FILTER_KEY}={STRICT} needs {MODE_KEY}={SOURCE_ROUTING}: with "
                                f"{mode} some replies would be dropped again")
    return True
