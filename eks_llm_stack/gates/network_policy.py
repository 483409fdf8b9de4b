"""Kubernetes NetworkPolicy semantics, evaluated on manifests as data (no cluster needed).

``can_connect(policies, source, destination, port)`` answers what an enforcing CNI would do
with one new TCP/UDP connection, following the ``networking.k8s.io/v1`` rules:

* a pod is isolated for ingress (egress) once any policy of its namespace selects it with
  ``Ingress`` (``Egress``) in ``policyTypes`` — ``policyTypes`` defaults to ``Ingress``, plus
  ``Egress`` when the policy has an ``egress`` section;
* an isolated pod admits a connection only if some rule of a selecting policy matches both the
  peer and the port; rules add up, nothing denies;
* a peer is ``podSelector`` alone (pods of the policy's namespace), ``namespaceSelector`` alone
  (every pod of the matching namespaces), both (matching pods in matching namespaces), or
  ``ipBlock`` (addresses in ``cidr`` and not in ``except``); ``from``/``to`` absent or empty
  matches every peer, ``ports`` absent or empty every port, a port entry without ``port`` every
  port of its protocol (``protocol`` defaults to TCP); named ports resolve against the
  destination pod's container ports; ``endPort`` makes a range;
* a connection needs the source's egress *and* the destination's ingress to allow it.

Label selectors support ``matchLabels`` and ``matchExpressions`` (In, NotIn, Exists,
DoesNotExist). Namespaces carry ``kubernetes.io/metadata.name`` as Kubernetes sets it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Pod:
    """A pod: namespace, labels, the labels of its namespace, named container ports, and its IP."""

    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)
    ip: str | None = None

    @property
    def all_namespace_labels(self) -> dict[str, str]:
        return {**self.namespace_labels, _NAME_LABEL: self.namespace}


@dataclass(frozen=True)
class External:
    """An address outside the cluster's pods (a load balancer, a node, the internet)."""

    ip: str


Endpoint = Pod | External


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A ``LabelSelector`` against labels; an empty selector matches everything."""
    if selector is None:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or ():
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"unknown selector operator {op!r}")
    return True


def _policy_types(spec: Mapping[str, Any]) -> list[str]:
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress", "Egress"] if "egress" in spec else ["Ingress"]


def _selects(policy: Mapping[str, Any], pod: Pod) -> bool:
    return policy["metadata"].get("namespace") == pod.namespace and selector_matches(
        policy["spec"].get("podSelector") or {}, pod.labels
    )


def _ip_in(ip: str, block: Mapping[str, Any]) -> bool:
    addr = ipaddress.ip_address(ip)
    net = ipaddress.ip_network(block["cidr"], strict=False)
    if addr.version != net.version or addr not in net:
        return False
    return not any(
        addr in ipaddress.ip_network(x, strict=False)
        for x in block.get("except") or ()
        if ipaddress.ip_network(x, strict=False).version == addr.version
    )


def _peer_matches(peer: Mapping[str, Any], policy_namespace: str, other: Endpoint) -> bool:
    if "ipBlock" in peer:
        ip = other.ip
        return ip is not None and _ip_in(ip, peer["ipBlock"])
    if not isinstance(other, Pod):
        return False
    ns_sel = peer.get("namespaceSelector")
    pod_sel = peer.get("podSelector")
    if ns_sel is None and pod_sel is None:
        return False
    if ns_sel is None:
        in_namespace = other.namespace == policy_namespace
    else:
        in_namespace = selector_matches(ns_sel, other.all_namespace_labels)
    return in_namespace and selector_matches(pod_sel, other.labels)


def _port_matches(entries: Iterable[Mapping[str, Any]] | None, target: Endpoint, port: int, protocol: str) -> bool:
    entries = list(entries or ())
    if not entries:
        return True
    for e in entries:
        if e.get("protocol", "TCP") != protocol:
            continue
        want = e.get("port")
        if want is None:
            return True
        if isinstance(want, str):
            if not isinstance(target, Pod) or target.ports.get(want) != port:
                continue
            return True
        end = e.get("endPort", want)
        if want <= port <= end:
            return True
    return False


def _rule_allows(
    rule: Mapping[str, Any],
    peers_key: str,
    policy_namespace: str,
    peer: Endpoint,
    port_target: Endpoint,
    port: int,
    protocol: str,
) -> bool:
    peers = rule.get(peers_key) or []
    if peers and not any(_peer_matches(x, policy_namespace, peer) for x in peers):
        return False
    return _port_matches(rule.get("ports"), port_target, port, protocol)


def _direction_allows(
    policies: Iterable[Mapping[str, Any]],
    pod: Pod,
    peer: Endpoint,
    port_target: Endpoint,
    port: int,
    protocol: str,
    direction: str,
) -> bool:
    kind, rules_key, peers_key = (
        ("Ingress", "ingress", "from") if direction == "ingress" else ("Egress", "egress", "to")
    )
    selecting = [x for x in policies if _selects(x, pod) and kind in _policy_types(x["spec"])]
    if not selecting:
        return True  # not isolated in this direction
    return any(
        _rule_allows(rule, peers_key, x["metadata"]["namespace"], peer, port_target, port, protocol)
        for x in selecting
        for rule in x["spec"].get(rules_key) or ()
    )


def network_policies(manifests: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The ``networking.k8s.io/v1`` NetworkPolicies among ``manifests``."""
    return [m for m in manifests if m.get("kind") == "NetworkPolicy" and m.get("apiVersion") == "networking.k8s.io/v1"]


def can_connect(
    policies: Iterable[Mapping[str, Any]], source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP"
) -> bool:
    """Whether ``source`` may open a connection to ``destination:port`` under ``policies``."""
    policies = network_policies(policies)
    egress_ok = not isinstance(source, Pod) or _direction_allows(
        policies, source, destination, destination, port, protocol, "egress"
    )
    ingress_ok = not isinstance(destination, Pod) or _direction_allows(
        policies, destination, source, destination, port, protocol, "ingress"
    )
    return egress_ok and ingress_ok


__all__ = ["External", "Pod", "can_connect", "network_policies", "selector_matches"]
