"""The modes, in one table: everything a mode means is in its entry, and
nothing else in the package asks which mode it is (tests/unit/test_layers.py
holds that; tests/unit/test_modes.py holds each entry's flags against its
planner). The hook, `fix`, diagnose and the CLI read their modes here, and
plan through them (Mode.plan), so that one rule holds for every caller."""

from __future__ import annotations

from . import plan
from .errors import InvalidAnnotation
from .primary import shown
from .records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    from .fix import Caller
    from .kernel import Snapshot, Uplinks
    from .plan import Change
    from .primary import Primary

    class Planner(Protocol):
        """plan.py's planners: `switch` (the caller's `switches`) and
        `strict` (io.multihome.rp_filter=strict)."""

        def __call__(self, snapshot: Snapshot, *, primary: Primary | None = None,
                      switch: bool = False, strict: bool = False) -> list[Change]: ...

MODE_KEY = "io.multihome.mode"
RP_FILTER_KEY = "io.multihome.rp_filter"
STRICT_VALUE = "strict"
# What a network left without a default route can still do.
OWN_SUBNET_ONLY = "answers only its own subnet: hosts routed to it from elsewhere get no reply"


class Mode(Record):
    """One mode.

    `summary`: what it changes; `trade`: what that costs, in one sentence;
    `planner`: plan.py's function that decides it. What the planner reads:
    `rp_filter` (sysctls), `routes` (routes, addresses and rules: netlink,
    so pyroute2 is loaded); the rest of its snapshot is left empty.
    `prepares`: with fewer than two uplinks it still acts when the
    interfaces are yet to come (a user namespace of its own), on what they
    will copy; every other mode then changes nothing. `uses_primary`:
    io.multihome.primary chooses what it keeps. `takes_strict`: it keeps
    every uplink working with io.multihome.rp_filter=strict. `drops_others`:
    the other uplinks lose their default route (`trade` says what for).
    `recommended`: why this is the mode to choose, or None. `changes`: False
    for the mode that changes nothing."""

    __slots__ = ("name", "summary", "trade", "planner", "rp_filter", "routes", "prepares",
                 "uses_primary", "takes_strict", "drops_others", "recommended", "changes")

    def __init__(self, name: str, summary: str, trade: str, planner: Planner, *,
                 rp_filter: bool = False, routes: bool = False, prepares: bool = False,
                 uses_primary: bool = False, takes_strict: bool = False,
                 drops_others: bool = False, recommended: str | None = None,
                 changes: bool = True) -> None:
        self.name, self.summary, self.trade, self.planner = name, summary, trade, planner
        self.rp_filter, self.routes, self.prepares = rp_filter, routes, prepares
        self.uses_primary, self.takes_strict = uses_primary, takes_strict
        self.drops_others, self.recommended, self.changes = drops_others, recommended, changes

    def __str__(self) -> str:
        return self.name

    def idle(self, found: Uplinks, caller: Caller) -> str | None:
        """Why this mode changes nothing for `caller` in a namespace whose
        uplinks are `found`, or None: fewer than two need nothing
        (plan.too_few_uplinks), whoever asks, except what a mode that
        `prepares` does before networks that are yet to come."""
        if self.prepares and caller.prepares:
            return None
        return plan.too_few_uplinks(found)

    def plan(self, snapshot: Snapshot, caller: Caller, *, primary: Primary | None = None,
             strict: bool = False, found: Uplinks | None = None) -> list[Change]:
        """What this mode changes in `snapshot` for `caller`: nothing where
        it is `idle`, judged on `found` (the uplinks already read from
        /proc: the hook's snapshot may hold no routes), else on the
        snapshot's own routes."""
        if self.idle(snapshot.routing.uplinks() if found is None else found, caller):
            return []
        return self.planner(snapshot, primary=primary, switch=caller.switches, strict=strict)


def _nothing(snapshot: Snapshot, *, primary: Primary | None = None, switch: bool = False,
             strict: bool = False) -> list[Change]:
    return []


MODES = (
    Mode("loose", "rp_filter 2 (loose) on all, default and every interface; every route stays",
         "anti-spoofing is off, and replies to the other uplinks' addresses may still leave "
         "by the wrong one (what --sysctl net.ipv4.conf.all.rp_filter=2 does too)",
         plan.loose, rp_filter=True, prepares=True),
    Mode("one-default", "one default route per address family, the primary network's; strict "
         "rp_filter stays", f"every other network {OWN_SUBNET_ONLY}", plan.one_default,
         routes=True, uses_primary=True, drops_others=True),
    # Measured: the one mode that fixes every case (inbound on a macvlan, a
    # port published beside one on podman 6) with strict filtering kept.
    Mode("source-routing", "a routing table and rules per uplink: every uplink keeps working "
         "and strict rp_filter stays", "a table and two rules per uplink in the container",
         plan.source_routing, rp_filter=True, routes=True, uses_primary=True,
         takes_strict=True,
         recommended="every uplink keeps working, strict filtering stays on"),
    Mode("off", "change nothing", "nothing is fixed", _nothing, changes=False),
)
LOOSE, ONE_DEFAULT, SOURCE_ROUTING, OFF = MODES
FIXES = tuple(mode for mode in MODES if mode.changes)
(RECOMMENDED,) = (mode for mode in MODES if mode.recommended)


def parse_mode(value: str | None) -> Mode:
    """The mode io.multihome.mode names; without one, the one that changes
    nothing."""
    if value is None:
        return OFF
    for mode in MODES:
        if value == mode.name:
            return mode
    raise InvalidAnnotation(f"unknown {MODE_KEY} {shown(value)}: expected one of "
                            f"{', '.join(m.name for m in MODES)}")


def parse_strict(value: str | None, mode: Mode) -> bool:
    """Whether io.multihome.rp_filter asks for strict filtering back, which
    only a mode that `takes_strict` keeps working."""
    if value is None:
        return False
    if value != STRICT_VALUE:
        raise InvalidAnnotation(f"invalid {RP_FILTER_KEY} {shown(value)}: expected "
                                f"{STRICT_VALUE}")
    if not mode.takes_strict:
        needed = " or ".join(m.name for m in MODES if m.takes_strict)
        raise InvalidAnnotation(f"{RP_FILTER_KEY}={STRICT_VALUE} needs {MODE_KEY}={needed}: "
                                f"with {mode} some replies would be dropped again")
    return True
