"""The exceptions the hook reports to the user (as a single line)."""


class HookError(Exception):
    """An expected failure: bad input, a refused namespace, a kernel error."""


class HostNamespace(HookError):
    """The target shares our own network namespace (`--network host`).

    The hook lets such a container start untouched; a command an operator
    typed refuses it."""


class NoSuchPrimary(HookError):
    """The primary names no interface of the container: a mistake when the
    container starts, a network since disconnected when it runs."""
