"""Kubernetes name rules, checked at synth time rather than by the API server at deploy time."""

from __future__ import annotations

import re

from ..errors import Problems

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def is_dns_label(name: str) -> bool:
    """RFC 1123 label: what Namespaces, Services and most names must be."""
    return isinstance(name, str) and len(name) <= 63 and bool(_DNS_LABEL.match(name))


def check_dns_label(problems: Problems, field: str, name: str) -> bool:
    return problems.check(
        is_dns_label(name),
        field,
        name,
        "is not a valid Kubernetes name (RFC 1123 label)",
        "use at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit",
    )
