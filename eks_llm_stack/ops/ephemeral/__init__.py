"""Ephemeral clusters (being split into one module per verb)."""

from .down import *  # noqa: F403
from .down import _delete_stack, _stack_status, _tags  # noqa: F401
