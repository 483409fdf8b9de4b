"""Moved to :mod:`eks_llm_stack.cli.sizing`; this name stays for existing imports."""

from __future__ import annotations

from .cli.sizing import register

__all__ = ["register"]
