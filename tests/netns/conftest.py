"""Fixtures for the namespace tests."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Iterator

import pytest

from testlab.fakens import Namespace, fake_container


@pytest.fixture
def make_ns(root: None) -> Iterator[Callable[..., Namespace]]:
    """Factory: make_ns(count) -> a fake container, removed after the test."""
    numbers = itertools.count()
    with contextlib.ExitStack() as stack:
        def factory(count: int = 2) -> Namespace:
            name = f"mhns{os.getpid()}x{next(numbers)}"
            return stack.enter_context(fake_container(name, count))
        yield factory
