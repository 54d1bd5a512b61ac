"""snapshot -> plan -> apply, inside the network namespace already entered.

The hook, `watch` and `apply` all fix a namespace through here, with one
request each (Fix), so that the same request leaves the same namespace
whoever makes it (tests/netns/test_agreement.py).
"""

from __future__ import annotations

from . import apply, plan, snapshot
from .errors import NoNamespace, NoSuchPrimary
from .kernel import NO_ROUTING
from .records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .kernel import Routing, Snapshot
    from .modes import Mode
    from .netlink import RouteSocket
    from .primary import Networks, Primary

# What the container is doing while it is fixed, which says what may be done.
# The hook, at createRuntime:
STARTING = "starting"
# ... in a user namespace of its own: podman connects its networks after
# the hook, so a mode that `prepares` acts on what they will copy.
BEFORE_NETWORKS = "before its networks"
# `watch`, and `apply` without --primary: the container's annotation,
# whose primary network may have been disconnected since (the others then
# carry on without it).
RUNNING = "running"
# `apply --primary`: an operator's explicit primary, which must be there.
# Only an operator (RUNNING or ASKED from `apply`) may undo another mode's
# work: `switch`.
ASKED = "asked"


class Fix(Record):
    """One request: `mode`, `primary` as given (a network name is resolved
    here against `networks`, None: podman's definition files), `strict`
    (io.multihome.rp_filter=strict), the container's `stage` (above), and
    `switch`: an operator's explicit mode change (see plan.py)."""

    __slots__ = ("mode", "primary", "strict", "stage", "switch", "networks")

    def __init__(self, mode: Mode, primary: Primary | None = None, *, strict: bool = False,
                 stage: str = STARTING, switch: bool = False,
                 networks: Networks | None = None) -> None:
        self.mode, self.primary, self.strict, self.stage = mode, primary, strict, stage
        self.switch, self.networks = switch, networks


class Outcome(Record):
    """The changes made (or planned), or why none were needed; `note`: what
    else is worth saying; `routing`: the routes as they were before (empty
    when the mode did not read them)."""

    __slots__ = ("changes", "skipped", "note", "routing")

    def __init__(self, changes: list[plan.Change], skipped: str | None = None,
                 note: str | None = None, routing: Routing = NO_ROUTING) -> None:
        self.changes, self.skipped, self.note, self.routing = changes, skipped, note, routing

    def __str__(self) -> str:
        text = self.skipped or plan.describe(self.changes)
        return f"{text} ({self.note})" if self.note else text


def _too_few_uplinks() -> str | None:
    """Why a namespace with fewer than two uplinks needs nothing, or None.

    One uplink cannot receive a reply on the "wrong" interface, so every
    mode would only weaken it (loose) or change nothing: with a host-wide
    default every single-network container passes here, before any netlink."""
    found = snapshot.uplinks()
    if len(found) >= 2 or snapshot.routing_tables():
        return None  # or routes elsewhere than main, which only netlink shows in full
    if not found:
        if snapshot.interfaces() == ["lo"]:
            return "no network interface, nothing to change"
        return "no default route, nothing to change"
    return f"one uplink ({found[0]}), nothing to change"


def fix(request: Fix) -> Outcome:
    """Make the current namespace what the request's mode wants."""
    return _fix(request, True)


def preview(request: Fix) -> Outcome:
    """What fix() would change, changing nothing."""
    return _fix(request, False)


def _fix(request: Fix, write: bool) -> Outcome:
    """Fewer than two uplinks, seen in /proc, mean nothing to do at all,
    whoever asks (a table of source routing left from two uplinks is still
    cleaned up)."""
    mode = request.mode
    try:
        skipped = _too_few_uplinks()
        if skipped and not (mode.prepares and request.stage == BEFORE_NETWORKS):
            return Outcome([], skipped)
        primary = request.primary
        if primary is not None:
            from .networks import resolve_primary

            primary = resolve_primary(primary, snapshot.interfaces(), request.networks)
        if not (mode.routes or primary is not None or request.switch):
            # sysctls only: no netlink, no pyroute2 import
            state = snapshot.read(mode, None)
            return Outcome(_plan_and_apply(request, primary, state, None, write))
        from .netlink import RouteSocket

        with RouteSocket() as sock:
            state = snapshot.read(mode, sock)
            try:
                return Outcome(_plan_and_apply(request, primary, state, sock, write),
                               routing=state.routing)
            except NoSuchPrimary as exc:
                if request.stage != RUNNING:
                    raise
                # Its network was disconnected: the others carry on without it.
                return Outcome(_plan_and_apply(request, None, state, sock, write),
                               note=f"{exc}: chosen without it", routing=state.routing)
    except OSError as exc:  # apply() reports its own: this is reading, nothing changed
        raise NoNamespace(f"cannot read the network namespace: {exc.strerror or exc}") from None


def _plan_and_apply(request: Fix, primary: Primary | None, state: Snapshot,
                    sock: RouteSocket | None, write: bool) -> list[plan.Change]:
    changes = request.mode.planner(state, primary=primary, switch=request.switch,
                                   strict=request.strict)
    if write:
        apply.apply(changes, sock)
    return changes
