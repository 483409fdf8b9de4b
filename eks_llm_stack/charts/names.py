"""Kubernetes name checks for chart props (the rule itself is in :mod:`eks_llm_stack.naming`)."""

from __future__ import annotations

from ..errors import Problems
from ..naming import is_dns_label

__all__ = ["check_dns_label", "is_dns_label"]


def check_dns_label(problems: Problems, field: str, name: str) -> bool:
    return problems.check(
        is_dns_label(name),
        field,
        name,
        "is not a valid Kubernetes name (RFC 1123 label)",
        "use at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit",
    )
