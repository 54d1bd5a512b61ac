"""The exceptions the hook reports to the user (as a single line), and the
exit statuses of the hook and of each command, in one table.

The table is what `--help`, the README and the man page show (a test holds
them to it); each class of HookError carries its status in it.
"""

# The hook: 0 lets the container start; anything else stops it. crun drops
# a hook's output, so the status alone must say what to fix: one per class
# of refusal. A block of its own, clear of what others mean by a status: 1
# (Python's own failure: a traceback), 2 (usage), 126/127 (the shell's
# "cannot execute"/"not found"), 128+N (killed by signal N).
STARTS = 0
BROKEN = 1  # as Python's own exit when it cannot even load the hook
INVALID_ANNOTATION, UNUSABLE_PRIMARY, IN_USE = 10, 11, 12
NO_NAMESPACE, ROLLED_BACK, ROLLBACK_FAILED, INVALID_STATE = 13, 14, 15, 16
INTERNAL = 70  # sysexits.h's EX_SOFTWARE: a bug
# The commands.
OK, PROBLEM, ERROR = 0, 1, 2
INTERRUPTED = 130  # the shell's 128 + SIGINT

EXIT_STATUS = (
    ("hook", STARTS, "the network is as asked, or there was nothing to change: the "
                     "container starts"),
    ("hook", STARTS, "the container shares the host's network namespace (`--network "
                     "host`): it starts, nothing changed"),
    ("hook", BROKEN, "a broken installation: Python could not load the hook (a traceback), "
                     "or a library it needs (pyroute2)"),
    ("hook", INVALID_ANNOTATION, "invalid annotation: unknown io.multihome.mode, an "
                                 "io.multihome.primary that is no name, subnet or address, "
                                 "io.multihome.rp_filter not strict or without source-routing"),
    ("hook", UNUSABLE_PRIMARY, "the primary matches no interface or network of the container, "
                               "matches several, or has no default route"),
    ("hook", IN_USE, "a routing table or rule priority the hook needs is used by something "
                     "else (or by the hook in another mode): nothing changed"),
    ("hook", NO_NAMESPACE, "the container's network namespace could not be entered or read "
                           "(its process gone?): nothing changed"),
    ("hook", ROLLED_BACK, "a change failed and the ones made before it were undone: nothing "
                          "changed"),
    ("hook", ROLLBACK_FAILED, "a change failed and undoing the others failed too: the "
                              "namespace may be half-changed"),
    ("hook", INVALID_STATE, "invalid OCI state on stdin (run by hand, or by a runtime that "
                            "is not OCI-compliant)"),
    ("hook", INTERNAL, "internal error: a bug (the message names the exception)"),
    ("diagnose", OK, "every container is healthy, at risk (a reply gets through only because "
                     "nothing checks sources), or shares the host's network (not diagnosed)"),
    ("diagnose", PROBLEM, "a problem: traffic the networks and mode promise is dropped now "
                          "(with --fail-on risk: a risk too)"),
    ("diagnose", ERROR, "error: invalid arguments, podman failed, a container is gone or "
                        "its namespace could not be entered (one line each)"),
    ("apply", OK, "every container got its mode, or needed nothing (`--dry-run`: planned)"),
    ("apply", ERROR, "error: as for diagnose, or a change failed (and was undone)"),
    ("doctor", OK, "not affected, affected with the hook where podman reads hooks, or "
                   "unknown (no podman on PATH)"),
    ("doctor", PROBLEM, "affected, and the hook is not where podman reads hooks"),
    ("doctor", ERROR, "error: podman failed"),
    ("watch", OK, "stopped by SIGTERM or Ctrl-C"),
    ("watch", ERROR, "error: invalid arguments, or podman events failed"),
    ("diagnose, apply", INTERRUPTED, "interrupted by Ctrl-C (quietly)"),
)


def exit_status_text() -> str:
    """The commands' rows as plain text, for --help; the hook's (podman
    reads those) are in the man page and the reference."""
    import textwrap

    return "\n".join(textwrap.fill(text, 79, initial_indent=f"  {command:<12} {code:>3}  ",
                                   subsequent_indent=" " * 20, break_on_hyphens=False)
                     for command, code, text in EXIT_STATUS if command != "hook")


class HookError(Exception):
    """An expected failure: bad input, a refused namespace, a kernel error.

    `status`: the hook's exit status for it. Each refusal the hook can meet
    has a class of its own below; one left unclassified is a bug."""

    status = INTERNAL


class InvalidAnnotation(HookError):
    status = INVALID_ANNOTATION


class InvalidState(HookError):
    """The OCI state on stdin, which the runtime writes, not the user."""

    status = INVALID_STATE


class UnusablePrimary(HookError):
    """The primary is well formed but names no single uplink."""

    status = UNUSABLE_PRIMARY


class NoSuchPrimary(UnusablePrimary):
    """The primary names no interface of the container: a mistake when the
    container starts, a network since disconnected when it runs."""


class InUse(HookError):
    """A routing table or rule priority of the hook's holds something it did
    not put there in this mode."""

    status = IN_USE


class NoNamespace(HookError):
    """The container's network namespace cannot be entered or read."""

    status = NO_NAMESPACE


class HostNamespace(HookError):
    """The target shares our own network namespace (`--network host`).

    The hook lets such a container start untouched; a command that would
    change it refuses; diagnose reports it as not diagnosed."""

    status = STARTS


class RolledBack(HookError):
    """A change failed; every change before it was undone."""

    status = ROLLED_BACK


class RollbackFailed(HookError):
    """A change failed, and so did undoing some of the others."""

    status = ROLLBACK_FAILED
