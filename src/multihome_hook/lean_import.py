"""pyroute2's message classes for netlink.py: imported lean, else in full.

`import pyroute2` costs ~200 ms and ~370 modules on every `podman run`
(asyncio, ndb, conntrack...), because the package `__init__` imports all of
it. The hook needs only the message classes for routes, addresses and rules,
so pyroute2 is registered as a package whose __init__ has not run and just
those are imported, some of what they import deferred (_lean).

pyroute2 0.6 is several distributions whose modules live in the namespace
package `pr2modules` (its `pyroute2/__init__` only makes aliases): there the
same classes are imported from `pr2modules.netlink.rtnl`.

The lean way leans on pyroute2's private layout (what its modules import
at import time, and how). A pyroute2 it no longer fits must cost start-up
time, never a container: any exception on the lean way falls back to the
plain import, with one warning line (message_classes).
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from . import log

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Where pyroute2's modules live: pr2modules in 0.6.
_PACKAGES = ("pyroute2", "pr2modules")


def message_classes() -> tuple[Any, Any, Any]:
    """pyroute2's rtmsg, ifaddrmsg and fibmsg: the lean way; should that
    fail in any way, what it loaded of pyroute2 is forgotten and the whole
    package imported as usual (ImportError only if that fails too)."""
    before = set(sys.modules)
    try:
        return _lean()
    except Exception as exc:
        for name in set(sys.modules) - before:
            if name.partition(".")[0] in _PACKAGES:
                del sys.modules[name]
        failure = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line
    classes = _plain()
    version = getattr(sys.modules["pyroute2"], "__version__", "(version unknown)")
    log.warning(f"pyroute2 {version} did not import the lean way ({failure}): imported "
                "in full instead, which makes each container start slower; please report it")
    return classes


def _plain() -> tuple[Any, Any, Any]:
    importlib.import_module("pyroute2")  # the package's own __init__, all of it
    return _from_package()


def _from_package() -> tuple[Any, Any, Any]:
    try:
        importlib.import_module("pyroute2.netlink")
        package = "pyroute2"
    except ModuleNotFoundError as exc:
        if exc.name != "pyroute2.netlink":
            raise
        package = "pr2modules"  # pyroute2 0.6

    def found(name: str) -> Any:
        return getattr(importlib.import_module(f"{package}.netlink.rtnl.{name}"), name)

    return found("rtmsg"), found("ifaddrmsg"), found("fibmsg")


def _hollow_pyroute2() -> None:
    """Register pyroute2 as a package whose __init__ has not run: its
    submodules import without it. The first attribute asked of the package
    (`from pyroute2 import IPRoute` elsewhere in the same process) runs the
    real __init__ in place, so nothing is left hollow.

    The import system's finders are asked directly, and the module is given
    the attributes the language reference lists, rather than through
    importlib.util, which on Python 3.9 imports `typing` (~11 ms)."""
    spec = None
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        spec = find_spec("pyroute2", None) if find_spec else None
        if spec is not None:
            break
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        raise ImportError("pyroute2 is not installed")
    package = ModuleType(spec.name)
    package.__spec__, package.__loader__ = spec, spec.loader
    package.__package__, package.__path__ = spec.name, spec.submodule_search_locations
    package.__file__ = spec.origin
    loader = spec.loader

    def complete(name: str) -> Any:
        del package.__getattr__
        loader.exec_module(package)
        return getattr(package, name)

    package.__getattr__ = complete  # type: ignore[method-assign]
    sys.modules["pyroute2"] = package


class _Deferred(ModuleType):
    """A module imported for real on the first use of any of its names."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_real_module(self.__name__), name)


def _real_module(name: str) -> ModuleType:
    # Used while still standing in (pyroute2 still being imported): step aside.
    if isinstance(sys.modules.get(name), _Deferred):
        del sys.modules[name]
    return importlib.import_module(name)


class _DeferredLogger:
    """What the stand-in's getLogger gives pyroute2 at import: the real
    logger, fetched when one of its methods is first used."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(_real_module("logging").getLogger(self._name), attr)


class _DeferredLogging(_Deferred):
    getLogger = staticmethod(_DeferredLogger)


def _lean() -> tuple[Any, Any, Any]:
    """The message classes, imported with three modules deferred: pyroute2's
    netlink modules import `logging` and `traceback` (~8 ms of `re`,
    `string`, `textwrap`...) to report their own errors, and `socket`
    imports `selectors` (~3 ms) for sendfile: none is used on the hook's
    way. While pyroute2 is imported, those are stand-ins that import the
    real module when a name of theirs is first used; they leave sys.modules
    afterwards, so the rest of the process imports the real ones as usual."""
    if "pyroute2" not in sys.modules:
        _hollow_pyroute2()
    deferred = {name: stand_in for name, stand_in in (
        ("logging", _DeferredLogging("logging")), ("traceback", _Deferred("traceback")),
        ("selectors", _Deferred("selectors"))) if name not in sys.modules}
    sys.modules.update(deferred)
    try:
        return _from_package()
    finally:
        for name, stand_in in deferred.items():
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]
