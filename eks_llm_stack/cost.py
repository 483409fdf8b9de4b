"""Moved to :mod:`eks_llm_stack.sizing.cost`; this name stays for existing imports."""

from __future__ import annotations

from .sizing.cost import TOKENS, TokenCost, token_cost

__all__ = ["TOKENS", "TokenCost", "token_cost"]
