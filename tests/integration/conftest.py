"""The running demo marketplace for integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vigil.demo_marketplace.runner import Marketplace
from vigil.stack import Stack


@pytest.fixture(scope="session")
def marketplace(stack: Stack) -> Iterator[Marketplace]:
    """The marketplace on the real stack: started for the session unless already running (then left so)."""
    market = Marketplace(stack.settings, log=lambda _line: None)
    already_running = all(healthy for *_, healthy in market.status())
    if not already_running:
        market.up()
    yield market
    if not already_running:
        market.down()
