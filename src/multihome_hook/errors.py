"""The exceptions the hook reports to the user (as a single line), and the
exit statuses of the hook and of each command, in one table.

The table is what `--help`, the README and the man page show (a test holds
them to it); the hook imports only the numbers.
"""

# The hook: 0 lets the container start; anything else stops it.
STARTS, REFUSED = 0, 1
# The commands.
OK, PROBLEM, ERROR = 0, 1, 2
INTERRUPTED = 130  # the shell's 128 + SIGINT

EXIT_STATUS = (
    ("hook", STARTS, "the network is as asked, or there was nothing to change: the "
                     "container starts"),
    ("hook", REFUSED, "refused (invalid annotation, unknown primary, a change failed and "
                      "was undone, ...): the container does not start; the reason is one "
                      "line in the journal"),
    ("diagnose", OK, "every container is healthy or shares the host's network (not "
                     "diagnosed)"),
    ("diagnose", PROBLEM, "a problem that drops packets was found"),
    ("diagnose", ERROR, "error: invalid arguments, podman failed, a container is gone or "
                        "its namespace could not be entered (one line each)"),
    ("apply", OK, "every container got its mode, or needed nothing (`--dry-run`: planned)"),
    ("apply", ERROR, "error: as for diagnose, or a change failed (and was undone)"),
    ("watch", OK, "stopped by SIGTERM or Ctrl-C"),
    ("watch", ERROR, "error: invalid arguments, or podman events failed"),
    ("any command", INTERRUPTED, "interrupted by Ctrl-C (quietly)"),
)


def exit_status_text() -> str:
    """The table as plain text, for --help."""
    import textwrap

    return "\n".join(textwrap.fill(text, 79, initial_indent=f"  {command:<12} {code:>3}  ",
                                   subsequent_indent=" " * 20, break_on_hyphens=False)
                     for command, code, text in EXIT_STATUS)


class HookError(Exception):
    """An expected failure: bad input, a refused namespace, a kernel error."""


class HostNamespace(HookError):
    """The target shares our own network namespace (`--network host`).

    The hook lets such a container start untouched; a command that would
    change it refuses; diagnose reports it as not diagnosed."""


class NoSuchPrimary(HookError):
    """The primary names no interface of the container: a mistake when the
    container starts, a network since disconnected when it runs."""
