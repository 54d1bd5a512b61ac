"""The OCI hook: podman runs it at createRuntime with the state on stdin.

With arguments, the same program is the operator's CLI (cli.py).

Exit status 0 lets the container start; anything else stops it, which is what
we want whenever its network could not be made right. Each kind of refusal
has a status of its own (errors.py): crun shows the user nothing else.
Imports stay lean: this runs before every annotated container.
"""

from __future__ import annotations

import gc
import os
import sys

from . import log
from .errors import BROKEN, INTERNAL, STARTS, HookError
from .request import MAX_STATE_BYTES, parse_state


def _run(raw: bytes) -> str:
    """Handle one OCI state; return the line to log."""
    request = parse_state(raw)
    cid = request.container_id[:12]
    if not request.mode.changes:
        return f"container {cid}: mode {request.mode}, nothing changed"
    from . import netns
    from .errors import HostNamespace
    from .fix import HOOK, HOOK_BEFORE_NETWORKS, Fix, fix

    try:
        # For good, holding the namespace's lock: this process ends with
        # this container.
        netns.enter(request.pid)
        later = not netns.shares_user_namespace(request.pid)
        outcome = fix(Fix(request.mode, request.primary, strict=request.strict,
                          caller=HOOK_BEFORE_NETWORKS if later else HOOK))
    except HostNamespace:
        # A host-wide default reaches --network host containers too: they
        # must start, and the host must stay as it is.
        return (f"container {cid}: mode {request.mode}: shares the host's network namespace "
                "(--network host), nothing changed")
    except HookError as exc:
        # Its class is its exit status: keep it.
        raise type(exc)(f"container {cid}: {exc}") from None
    if outcome.skipped and later:
        log.warning(f"container {cid} has a user namespace of its own, whose networks podman "
                    f"connects after this hook ({outcome}): `oci-multihome-hook watch` "
                    f"applies {request.mode} when it starts, or run `oci-multihome-hook apply "
                    f"--mode {request.mode}` then")
    return f"container {cid}: mode {request.mode}: {outcome}"


def main() -> int:
    """The hook's exit status ends the process (os._exit); the CLI's is returned."""
    # podman gives the state on a pipe; with no arguments at a terminal it is
    # an operator who expects usage, not a hook waiting for its stdin.
    if sys.argv[1:] or (sys.stdin is not None and sys.stdin.isatty()):
        from .cli import main as cli

        return cli(sys.argv[1:])
    # A process this short has no garbage worth a collection, and a full one
    # walks every object of pyroute2's classes (measured: up to 6 ms).
    gc.disable()
    try:
        log.info(_run(sys.stdin.buffer.read(MAX_STATE_BYTES + 1)))
        code = STARTS
    except HookError as exc:
        log.error(str(exc))
        code = exc.status
    except ImportError as exc:  # the installation's fault, not the request's nor a bug
        log.error(f"broken installation: {exc}")
        code = BROKEN
    except Exception as exc:  # a bug: still one line, and the container stays stopped
        log.error(f"internal error: {type(exc).__name__}: {exc}")
        code = INTERNAL
    # Every annotated `podman run` waits for this process: skip the
    # interpreter's teardown (several ms of freeing modules); nothing is left
    # to flush but the standard streams.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
