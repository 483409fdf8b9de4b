"""Kubernetes name rules in one place, checked at synth time rather than by the API server at deploy time.

Also the two spellings the library derives from a kebab-case name: construct ids
(:func:`pascal_case`) and stack-name prefixes (:func:`stack_prefix_of`).
"""

from __future__ import annotations

import re

from .errors import Problems

#: RFC 1123 label: what Namespaces, Services, NodePools and most object names must be (at most 63 characters).
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
#: RFC 1123 subdomain: dot-separated labels (at most 253 characters), e.g. a label key's prefix.
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
#: The name part of a label key (Kubernetes' "qualified name"), at most 63 characters.
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
#: A label value: empty, or at most 63 characters with alphanumerics at both ends.
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

#: The fixes of a bad label key / value, worded once.
LABEL_KEY_FIX = "use [prefix/]name: a DNS subdomain prefix, and a name of at most 63 letters, digits, '-', '_' and '.'"
LABEL_VALUE_FIX = "use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"


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


def is_label_key(key: object) -> bool:
    """``key`` is a Kubernetes label (or annotation) key: ``[prefix/]name`` as the API server validates it.

    The prefix, if any, is a DNS subdomain of at most 253 characters; the name is at most 63
    letters, digits, '-', '_' and '.', alphanumeric at both ends (apimachinery ``IsQualifiedName``).
    """
    if not isinstance(key, str):
        return False
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix)):
        return False
    return len(name) <= 63 and bool(_QUALIFIED_NAME.match(name))


def is_label_value(value: object) -> bool:
    """``value`` is a Kubernetes label value: empty, or at most 63 characters, alphanumeric at both ends."""
    return isinstance(value, str) and len(value) <= 63 and bool(_LABEL_VALUE.match(value))


def pascal_case(name: str) -> str:
    """A construct id from a kebab-case name: ``model-cache`` -> ``ModelCache``, ``llama-3-8b`` -> ``Llama38b``.

    Construct ids are part of every logical id below them, so this rule never changes.
    """
    return "".join(part.capitalize() for part in name.split("-"))


def stack_prefix_of(prefix: str) -> str:
    """The start of every stack name: ``llm`` -> ``Llm``, ``llm-ci`` -> ``LlmCi``, ``ci-42-7`` -> ``Ci-42-7``.

    Each '-' before a letter becomes a capital (so the shipped profiles keep their stack
    names); a '-' before a digit or another '-' (or at the end) is kept. Prefixes are lowercase,
    so the mapping can be undone and two prefixes never share stack names (``ci-42-11`` is
    ``Ci-42-11``, ``ci-421-1`` is ``Ci-421-1``) — which :func:`pascal_case` does not promise.
    """
    head, *parts = prefix.split("-")
    return head.capitalize() + "".join(p.capitalize() if p[:1].isalpha() else f"-{p}" for p in parts)


def stack_name(prefix: str, role: str) -> str:
    """The CloudFormation stack of ``role`` (a :data:`~eks_llm_stack.conventions.STACK_ROLES` entry)
    for a profile with ``prefix``: ``llm`` + ``Data`` -> ``Llm-Data``."""
    return f"{stack_prefix_of(prefix)}-{role}"
