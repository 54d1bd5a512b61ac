"""One place for the hook's messages: stderr for the user, syslog for the admin.

runc shows a failing hook's stderr to the user, crun drops it: syslog keeps it
either way.
"""

import sys
import syslog

NAME = "oci-multihome-hook"
_to_syslog = [True]


def stderr_only() -> None:
    """For an operator's command: its mistakes (a misspelt container name)
    are theirs to read, and stay out of the journal, where admins look for
    the hook's refusals under this tag."""
    _to_syslog[0] = False


def _syslog(priority: int, message: str) -> None:
    if not _to_syslog[0]:
        return
    syslog.openlog(NAME, syslog.LOG_PID, syslog.LOG_DAEMON)
    syslog.syslog(priority, message)


def info(message: str) -> None:
    _syslog(syslog.LOG_INFO, message)


def warning(message: str) -> None:
    print(f"{NAME}: warning: {message}", file=sys.stderr)
    _syslog(syslog.LOG_WARNING, message)


def error(message: str) -> None:
    print(f"{NAME}: {message}", file=sys.stderr)
    _syslog(syslog.LOG_ERR, message)
