"""The one exception the hook reports to the user (as a single line)."""


class HookError(Exception):
    """An expected failure: bad input, a refused namespace, a kernel error."""
