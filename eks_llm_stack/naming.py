"""Kubernetes name rules in one place, checked at synth time rather than by the API server at deploy time."""

from __future__ import annotations

import re

from .errors import Problems

#: RFC 1123 label: what Namespaces, Services, NodePools and most object names must be (at most 63 characters).
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def is_dns_label(name: object, max_length: int = 63) -> bool:
    """``name`` is a string of at most ``max_length`` lowercase letters, digits or '-', alphanumeric at both ends."""
    return isinstance(name, str) and len(name) <= max_length and bool(DNS_LABEL.match(name))


def check_dns_label(problems: Problems, field: str, name: str) -> bool:
    """Record a problem on ``field`` unless ``name`` is an RFC 1123 label."""
    return problems.check(
        is_dns_label(name),
        field,
        name,
        "is not a valid Kubernetes name (RFC 1123 label)",
        "use at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit",
    )
