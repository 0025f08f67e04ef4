"""The local stack: every real service vigil and its demo need, on loopback."""

from vigil.stack.manager import ComponentStatus, Stack, StackError
from vigil.stack.settings import StackSettings

__all__ = ["ComponentStatus", "Stack", "StackError", "StackSettings"]
