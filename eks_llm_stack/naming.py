"""Kubernetes name rules in one place, checked at synth time rather than by the API server at deploy time."""

from __future__ import annotations

import re

#: RFC 1123 label: what Namespaces, Services, NodePools and most object names must be (at most 63 characters).
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def is_dns_label(name: object, max_length: int = 63) -> bool:
    """``name`` is a string of at most ``max_length`` lowercase letters, digits or '-', alphanumeric at both ends."""
    return isinstance(name, str) and len(name) <= max_length and bool(DNS_LABEL.match(name))
