"""The root labs (testlab/rootlab.py): one lab per stack and session.

Each stack of testlab/roots.py (podman 5 from Debian 13, podman 6 from
Debian experimental; $MULTIHOME_STACKS picks some) runs in namespaces of
its own with the project's deb (dist/, `make deb`) installed by apt: the
hook runs from podman's default hook dir on the stack's python3, pyroute2
and pydantic. Every test of the `lab` fixture runs once per stack (the
stack's name is in the test id); `make test-labs` builds the deb and, the
first time, the roots.

The network shapes' measured rows (test_shapes.py) are printed at the end
of the run and written as JSON to $MULTIHOME_LAB_RESULTS when it is set:
the README's tables for podman 5 and 6. With pytest-xdist (`make
test-labs`: -n 2 --dist loadgroup) each stack runs on a worker of its own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from testlab import rootlab, shapes
from testlab.policy import require, required_deb
from testlab.roots import Stack, selected
from testlab.shapes import Results

RESULTS = Results("root labs", "MULTIHOME_LAB_RESULTS")
@pytest.fixture(scope="session")
def deb() -> Path:
    """The deb a lab installs, as new as the sources."""
    require(os.geteuid() == 0, "needs root")
    return required_deb()


@pytest.fixture(scope="session", params=selected(), ids=lambda stack: stack.name)
def stack(request: pytest.FixtureRequest) -> Stack:
    """A stack of $MULTIHOME_STACKS, its root built."""
    found: Stack = request.param
    require(found.ready() or shutil.which("mmdebstrap") is not None,
            f"needs mmdebstrap (apt-get install mmdebstrap) to build {found.root}")
    found.ensure()
    return found


class Labs:
    """The labs this process made, one per stack, all kept to the end of the
    session: a worker given the cells of several stacks makes each lab
    once, where pytest would tear a parametrized session fixture down at
    every change of stack."""

    def __init__(self, deb: Path, running: contextlib.ExitStack) -> None:
        self.deb, self.running = deb, running
        self.made: dict[str, rootlab.Lab] = {}

    def of(self, stack: Stack) -> rootlab.Lab:
        if stack.name not in self.made:
            self.made[stack.name] = self.running.enter_context(rootlab.running(stack, self.deb))
        return self.made[stack.name]


@pytest.fixture(scope="session")
def labs(deb: Path) -> Iterator[Labs]:
    with contextlib.ExitStack() as running:
        yield Labs(deb, running)


@pytest.fixture(scope="session", name="lab")
def running_lab(stack: Stack, labs: Labs) -> rootlab.Lab:
    return labs.of(stack)


@pytest.fixture(scope="session")
def results() -> Results:
    return RESULTS


# The shape cells of one stack, on this many workers side by side: they
# mostly wait (pings, time-outs), and each worker makes its own lab.
SHAPE_GROUPS = 2


def _runs(item: pytest.Item, stack: Stack) -> bool:
    """Whether `item` runs on `stack`: the tests marked `matrix` on every
    stack, the others where the whole suite runs (podman 5 and 6); of the
    shapes, the cells the stack makes."""
    if not stack.whole_suite and item.get_closest_marker("matrix") is None:
        return False
    params = item.callspec.params  # type: ignore[attr-defined]
    if {"shape", "mode", "filtering"} <= params.keys():
        return shapes.applies(stack, params["shape"], params["mode"], params["filtering"])
    return True


# First: pytest-xdist reads the group marks in a hook of its own.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Only what each stack makes (_runs: the rest is deselected, and the
    summary counts it). Under pytest-xdist (`--dist loadgroup`), each
    stack's tests on one worker, its shape cells on SHAPE_GROUPS more: a
    lab is made once per worker, and the stacks measure side by side."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        stack = callspec.params.get("stack") if callspec is not None else None
        if callspec is None or not isinstance(stack, Stack):
            kept.append(item)
        elif not _runs(item, stack):
            dropped.append(item)
        else:
            kept.append(item)
            group = stack.name
            if "shape" in callspec.params:
                group += f"-shapes{len(kept) % SHAPE_GROUPS}"
            item.add_marker(pytest.mark.xdist_group(group))
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_sessionfinish(session: pytest.Session) -> None:
    RESULTS.from_worker(session)


def pytest_testnodedown(node: object, error: object) -> None:
    RESULTS.to_controller(node)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    RESULTS.summary(terminalreporter)
