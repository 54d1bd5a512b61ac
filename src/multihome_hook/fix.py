"""snapshot -> plan -> apply, inside the network namespace already entered.

Shared by the hook and anything else that fixes a namespace, so that they can
never disagree about what a mode does.
"""

from __future__ import annotations

from . import apply, plan, snapshot
from .errors import HookError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .netlink import RouteSocket
    from .request import Mode, Primary


_NO_ROUTING = snapshot.Routing({}, (), ())


def changes_for(mode: Mode, primary: Primary | None,
                sock: RouteSocket | None) -> list[plan.Change]:
    """Read what `mode` needs (and only that: this is the hook's path), plan."""
    if mode == "loose":
        return plan.for_mode(mode, primary, snapshot.rp_filter(), _NO_ROUTING)
    assert sock is not None
    routing = snapshot.routing(sock, rules=mode == "source-routing")
    return plan.for_mode(mode, primary, {}, routing)


def _plan_and_apply(mode: Mode, primary: Primary | None, sock: RouteSocket | None,
                    dry_run: bool) -> list[plan.Change]:
    changes = changes_for(mode, primary, sock)
    if not dry_run:
        apply.apply(changes, sock)
    return changes


def fix(mode: Mode, primary: Primary | None, dry_run: bool = False) -> list[plan.Change]:
    """Apply `mode` to the current namespace (unless `dry_run`); return the
    changes made (or that would be made)."""
    try:
        if mode == "loose":  # sysctls only: no netlink, no pyroute2 import
            return _plan_and_apply(mode, primary, None, dry_run)
        from .netlink import RouteSocket

        with RouteSocket() as sock:
            return _plan_and_apply(mode, primary, sock, dry_run)
    except OSError as exc:  # apply() reports its own: this is reading, nothing changed
        raise HookError(f"cannot read the network namespace: {exc.strerror or exc}") from None
