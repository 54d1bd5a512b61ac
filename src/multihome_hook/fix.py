"""snapshot -> plan -> apply, inside the network namespace already entered.

The hook, `watch` and `apply` all fix a namespace through here, with one
request each (Fix), so that the same request leaves the same namespace
whoever makes it (tests/netns/test_agreement.py); who makes it (Caller)
says only what may be done besides.
"""

from __future__ import annotations

from . import apply, plan, snapshot
from .errors import NoNamespace, NoSuchPrimary
from .kernel import NO_ROUTING
from .records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .kernel import Routing, Snapshot, Uplinks
    from .modes import Mode
    from .netlink import RouteSocket
    from .primary import Networks, Primary


class Caller(Record):
    """Who asks for a fix, which says what may be done besides the mode's
    work; one of the five below, and no other. `prepares`: podman connects
    the container's networks after this caller, so a mode that `prepares`
    acts on what they will copy (Mode.idle). `primary_may_be_gone`: the
    primary is the container's annotation, read while it runs: its network
    may have been disconnected since, and the others then carry on without
    it. `switches`: an operator's explicit request, which may undo another
    mode's work (plan.py)."""

    __slots__ = ("name", "prepares", "primary_may_be_gone", "switches")

    def __init__(self, name: str, *, prepares: bool = False, primary_may_be_gone: bool = False,
                 switches: bool = False) -> None:
        self.name, self.prepares = name, prepares
        self.primary_may_be_gone, self.switches = primary_may_be_gone, switches

    def __str__(self) -> str:
        return self.name


# The hook, at createRuntime, and there in a user namespace of its own.
HOOK = Caller("hook")
HOOK_BEFORE_NETWORKS = Caller("hook, before the networks", prepares=True)
# `watch`, on a container's start or a network (dis)connected.
WATCH = Caller("watch", primary_may_be_gone=True)
# `apply` (and what diagnose shows of it), with the annotation's primary;
# `apply --primary`: an operator's explicit primary, which must be there.
APPLY = Caller("apply", primary_may_be_gone=True, switches=True)
APPLY_PRIMARY = Caller("apply --primary", switches=True)
CALLERS = (HOOK, HOOK_BEFORE_NETWORKS, WATCH, APPLY, APPLY_PRIMARY)


class Fix(Record):
    """One request: `mode`, `primary` as given (a network name is resolved
    here against `networks`, None: podman's definition files), `strict`
    (io.multihome.rp_filter=strict), and its `caller` (above)."""

    __slots__ = ("mode", "primary", "strict", "caller", "networks")

    def __init__(self, mode: Mode, primary: Primary | None = None, *, strict: bool = False,
                 caller: Caller = HOOK, networks: Networks | None = None) -> None:
        self.mode, self.primary, self.strict = mode, primary, strict
        self.caller, self.networks = caller, networks


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


def fix(request: Fix) -> Outcome:
    """Make the current namespace what the request's mode wants."""
    return _fix(request, True)


def preview(request: Fix) -> Outcome:
    """What fix() would change, changing nothing."""
    return _fix(request, False)


def _fix(request: Fix, write: bool) -> Outcome:
    """Where the mode is idle (modes.Mode.idle: fewer than two uplinks),
    seen in /proc, before any netlink: with a host-wide default every
    single-network container passes here."""
    mode = request.mode
    try:
        found = snapshot.uplinks()
        skipped = mode.idle(found, request.caller)
        if skipped:
            return Outcome([], skipped)
        primary = request.primary
        if primary is not None:
            from .networks import resolve_primary

            primary = resolve_primary(primary, snapshot.interfaces(), request.networks)
        if not (mode.routes or primary is not None or request.caller.switches):
            # sysctls only: no netlink, no pyroute2 import
            state = snapshot.read(mode, None)
            return Outcome(_plan_and_apply(request, primary, state, found, None, write))
        from .netlink import RouteSocket

        with RouteSocket() as sock:
            state = snapshot.read(mode, sock)
            try:
                return Outcome(_plan_and_apply(request, primary, state, found, sock, write),
                               routing=state.routing)
            except NoSuchPrimary as exc:
                if not request.caller.primary_may_be_gone:
                    raise
                # Its network was disconnected: the others carry on without it.
                return Outcome(_plan_and_apply(request, None, state, found, sock, write),
                               note=f"{exc}: chosen without it", routing=state.routing)
    except OSError as exc:  # apply() reports its own: this is reading, nothing changed
        raise NoNamespace(f"cannot read the network namespace: {exc.strerror or exc}") from None


def _plan_and_apply(request: Fix, primary: Primary | None, state: Snapshot, found: Uplinks,
                    sock: RouteSocket | None, write: bool) -> list[plan.Change]:
    changes = request.mode.plan(state, request.caller, primary=primary, strict=request.strict,
                                found=found)
    if write:
        apply.apply(changes, sock)
    return changes
