"""Shared fixtures. Integration tests talk to the real local stack started by `vigil stack up`."""

from __future__ import annotations

import pytest

from vigil.stack import Stack, StackSettings


@pytest.fixture(scope="session")
def stack_settings() -> StackSettings:
    return StackSettings()


@pytest.fixture(scope="session")
def stack(stack_settings: StackSettings) -> Stack:
    """The running local stack; fails (never skips) when a component is not healthy."""
    running = Stack(stack_settings, log=lambda _line: None)
    unhealthy = [f"{s.name}: {s.state} {s.detail}" for s in running.status() if s.state != "healthy"]
    if unhealthy:
        pytest.fail(
            "the local stack is not healthy (start it with `vigil stack up`):\n" + "\n".join(unhealthy)
        )
    return running
