"""The host's podman 4.3: the network shapes' measured rows (tests/podman/
test_shapes.py), printed at the end of the run (with pytest-xdist, by the
controller) and written as JSON to $MULTIHOME_P4_RESULTS when it is set:
docs/shapes.md's tables for podman 4."""

from __future__ import annotations

import pytest

from testlab.shapes import Results

RESULTS = Results("podman 4.3 (the podman 4 lab)", "MULTIHOME_P4_RESULTS")


@pytest.fixture(scope="session")
def results() -> Results:
    return RESULTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    RESULTS.summary(terminalreporter)


def pytest_sessionfinish(session: pytest.Session) -> None:
    RESULTS.from_worker(session)


def pytest_testnodedown(node: object, error: object) -> None:
    RESULTS.to_controller(node)
