"""Default-deny NetworkPolicies for the serving namespace, and the holes each model needs.

Enforced by the VPC CNI's network-policy agent (``enableNetworkPolicy`` on the ``vpc-cni``
add-on, :mod:`eks_llm_stack.constructs.cluster`). Two constructs, so that adding a model touches
only the chart of that model:

* :class:`ServingNamespacePolicies` (Platform stack) — the namespace baseline: every pod is
  isolated for ingress and egress; DNS to CoreDNS is the only egress every pod gets; model-fetch
  Jobs may reach HTTPS (S3, the Hugging Face Hub) and the EKS Pod Identity agent; labelled API
  clients (the benchmark Job) may reach the models' port, HTTPS and the Pod Identity agent.
* :class:`ModelNetworkPolicy` (the model's chart) — port 8000 of the model's pods from
  Prometheus (scrape of ``/metrics``), from API clients (pods labelled
  :data:`API_CLIENT_LABEL` in namespaces labelled the same) and, with a load balancer, from the
  VPC's addresses (the ALB/NLB sends from its own private IPs); HTTPS egress only when the pod
  itself fetches weights; and, for a multi-node model, every TCP port between the pods of one
  LeaderWorkerSet group and no other (one policy per group index up to the maximum replicas).

Kubelet probes are not affected: the agent always admits the node's own address.
KEDA needs no hole: its scalers query Prometheus, never the model.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cdk8s
from constructs import Construct

from ..conventions import MANAGED_BY
from ..errors import collecting
from ..naming import check_dns_label
from .kube import api_object

#: Label that lets a pod call the models' API (the benchmark Job carries it); it must be on the
#: pod *and* on its namespace, so creating a pod is not enough to get in.
API_CLIENT_LABEL = "eks-llm-stack.io/api-client"
#: The namespace name label Kubernetes sets on every namespace (namespaceSelector by name).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
#: Labels the prometheus-operator puts on the Prometheus pods it runs.
PROMETHEUS_POD_LABELS: Mapping[str, str] = {"app.kubernetes.io/name": "prometheus"}
#: Labels every model server pod carries (see ``VllmModelProps.selector_labels``).
MODEL_POD_LABELS: Mapping[str, str] = {"app.kubernetes.io/name": "vllm"}
#: CoreDNS pods of the EKS add-on.
DNS_POD_LABELS: Mapping[str, str] = {"k8s-app": "kube-dns"}
#: The EKS Pod Identity agent (link-local, on every node): credentials for S3 reads.
POD_IDENTITY_AGENT_CIDR = "169.254.170.23/32"
POD_IDENTITY_AGENT_PORT = 80
#: Labels of the model-fetch Job pods (see :mod:`eks_llm_stack.charts.storage`).
FETCH_POD_LABELS: Mapping[str, str] = {"app.kubernetes.io/name": "model-fetch"}
#: LeaderWorkerSet labels on every pod of a group.
LWS_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
LWS_GROUP_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/group-index"
API = "networking.k8s.io/v1"


def _policy(scope: Construct, id: str, name: str, namespace: str, spec: dict[str, Any]) -> cdk8s.ApiObject:
    return api_object(
        scope,
        id,
        api_version=API,
        kind="NetworkPolicy",
        metadata=cdk8s.ApiObjectMetadata(name=name, namespace=namespace, labels=dict(MANAGED_BY)),
        body={"spec": spec},
    )


def _https_egress() -> list[dict[str, Any]]:
    # S3 and the Hub have no fixed addresses: any destination, HTTPS only.
    return [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 443}]}]


def _pod_identity_egress() -> dict[str, Any]:
    return {
        "to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT_CIDR}}],
        "ports": [{"protocol": "TCP", "port": POD_IDENTITY_AGENT_PORT}],
    }


@dataclass(frozen=True, kw_only=True)
class ServingNamespacePoliciesProps:
    """The namespace baseline.

    ``namespace`` — the serving namespace (required). ``fetch_jobs`` — let model-fetch Job pods
    reach HTTPS and the Pod Identity agent (default True). ``model_port`` — the models' API port,
    which labelled API clients of the namespace may reach (default 8000).
    """

    namespace: str
    fetch_jobs: bool = True
    model_port: int = 8000

    def __post_init__(self) -> None:
        with collecting("ServingNamespacePoliciesProps") as p:
            check_dns_label(p, "namespace", self.namespace)


class ServingNamespacePolicies(Construct):
    """``default-deny`` (every pod, both directions), ``allow-dns`` and ``model-fetch-egress``."""

    def __init__(self, scope: Construct, id: str, *, props: ServingNamespacePoliciesProps) -> None:
        super().__init__(scope, id)
        ns = props.namespace
        every: dict[str, Any] = {}
        self.default_deny = _policy(
            self, "DefaultDeny", "default-deny", ns, {"podSelector": every, "policyTypes": ["Ingress", "Egress"]}
        )
        dns_ports = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
        self.allow_dns = _policy(
            self,
            "AllowDns",
            "allow-dns",
            ns,
            {
                "podSelector": every,
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: "kube-system"}},
                                "podSelector": {"matchLabels": dict(DNS_POD_LABELS)},
                            }
                        ],
                        "ports": dns_ports,
                    }
                ],
            },
        )
        # API clients of this namespace (the benchmark Job): the models' port, and HTTPS with Pod Identity
        # for results uploaded to S3.
        self.client_egress = _policy(
            self,
            "ClientEgress",
            "api-client-egress",
            ns,
            {
                "podSelector": {"matchLabels": {API_CLIENT_LABEL: "true"}},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [{"podSelector": {"matchLabels": dict(MODEL_POD_LABELS)}}],
                        "ports": [{"protocol": "TCP", "port": props.model_port}],
                    },
                    *_https_egress(),
                    _pod_identity_egress(),
                ],
            },
        )
        self.fetch_egress: cdk8s.ApiObject | None = None
        if props.fetch_jobs:
            self.fetch_egress = _policy(
                self,
                "FetchEgress",
                "model-fetch-egress",
                ns,
                {
                    "podSelector": {"matchLabels": dict(FETCH_POD_LABELS)},
                    "policyTypes": ["Egress"],
                    "egress": [*_https_egress(), _pod_identity_egress()],
                },
            )


@dataclass(frozen=True, kw_only=True)
class ModelNetworkPolicyProps:
    """The traffic one model's pods may take part in.

    ``name`` / ``namespace`` — the model (required). ``pod_labels`` — labels selecting its pods
    (required: ``VllmModelProps.selector_labels``). ``port`` — its API port (default 8000).
    ``monitoring_namespace`` — where Prometheus runs (default ``monitoring``; ``None``: no scrape).
    ``load_balancer_cidrs`` — addresses the load balancer sends from, e.g. the VPC CIDR (default
    none: no load balancer). ``internet_egress`` — the pod downloads its weights itself, from S3 or
    the Hub (default False). ``pod_identity`` — the pod reads S3 with Pod Identity credentials
    (default False). ``lws_name`` / ``max_groups`` — a multi-node model's LeaderWorkerSet and its
    maximum replicas (default none: single-node).
    """

    name: str
    namespace: str
    pod_labels: Mapping[str, str]
    port: int = 8000
    monitoring_namespace: str | None = "monitoring"
    load_balancer_cidrs: tuple[str, ...] = ()
    internet_egress: bool = False
    pod_identity: bool = False
    lws_name: str | None = None
    max_groups: int = 0

    def __post_init__(self) -> None:
        with collecting(f"ModelNetworkPolicyProps '{self.name}'") as p:
            check_dns_label(p, "name", self.name)
            check_dns_label(p, "namespace", self.namespace)
            if self.monitoring_namespace is not None:
                check_dns_label(p, "monitoring_namespace", self.monitoring_namespace)
            p.check(bool(self.pod_labels), "pod_labels", {}, "is empty", "pass the labels that select the model's pods")
            p.check(1 <= self.port <= 65535, "port", self.port, "is not a TCP port", "use 1..65535")
            for cidr in self.load_balancer_cidrs:
                try:
                    ipaddress.ip_network(cidr)
                    ok = True
                except ValueError:
                    ok = False
                p.check(ok, "load_balancer_cidrs", cidr, "is not a CIDR block", "write e.g. 10.0.0.0/16")
                p.check(
                    cidr not in ("0.0.0.0/0", "::/0"),
                    "load_balancer_cidrs",
                    cidr,
                    "opens the model's port to every address",
                    "give the VPC CIDR: the load balancer sends from its own private addresses",
                )
            if self.lws_name is not None:
                p.check(
                    self.max_groups >= 1,
                    "max_groups",
                    self.max_groups,
                    "a multi-node model needs at least one group",
                    "pass the model's maximum replicas",
                )


class ModelNetworkPolicy(Construct):
    """``<name>-api`` (ingress to the API port), ``<name>-egress`` (when the pod fetches weights)
    and ``<name>-group-<i>`` (multi-node, one per group index)."""

    def __init__(self, scope: Construct, id: str, *, props: ModelNetworkPolicyProps) -> None:
        super().__init__(scope, id)
        p = props
        pods = {"matchLabels": dict(p.pod_labels)}
        client = {"matchLabels": {API_CLIENT_LABEL: "true"}}
        # Labelled clients in labelled namespaces, or labelled clients of the serving namespace itself.
        peers: list[dict[str, Any]] = [{"namespaceSelector": client, "podSelector": client}, {"podSelector": client}]
        if p.monitoring_namespace is not None:
            peers.append(
                {
                    "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: p.monitoring_namespace}},
                    "podSelector": {"matchLabels": dict(PROMETHEUS_POD_LABELS)},
                }
            )
        peers += [{"ipBlock": {"cidr": c}} for c in p.load_balancer_cidrs]
        self.api = _policy(
            self,
            "Api",
            f"{p.name}-api",
            p.namespace,
            {
                "podSelector": pods,
                "policyTypes": ["Ingress"],
                "ingress": [{"from": peers, "ports": [{"protocol": "TCP", "port": p.port}]}],
            },
        )
        self.egress: cdk8s.ApiObject | None = None
        egress: list[dict[str, Any]] = []
        if p.internet_egress:
            egress += _https_egress()
        if p.pod_identity:
            egress.append(_pod_identity_egress())
        if egress:
            self.egress = _policy(
                self,
                "Egress",
                f"{p.name}-egress",
                p.namespace,
                {"podSelector": pods, "policyTypes": ["Egress"], "egress": egress},
            )
        self.groups: list[cdk8s.ApiObject] = []
        if p.lws_name is not None:
            # A NetworkPolicy cannot say "my own group"; the group index can, and the maximum
            # replicas bound it. torch.distributed, NCCL's bootstrap and vLLM's message queues use
            # the rendezvous port and ephemeral ports: every TCP port, inside the group only.
            for i in range(p.max_groups):
                group = {"matchLabels": {LWS_NAME_LABEL: p.lws_name, LWS_GROUP_INDEX_LABEL: str(i)}}
                peer = [{"podSelector": group}]
                self.groups.append(
                    _policy(
                        self,
                        f"Group{i}",
                        f"{p.name}-group-{i}",
                        p.namespace,
                        {
                            "podSelector": group,
                            "policyTypes": ["Ingress", "Egress"],
                            "ingress": [{"from": peer, "ports": [{"protocol": "TCP"}]}],
                            "egress": [{"to": peer, "ports": [{"protocol": "TCP"}]}],
                        },
                    )
                )


__all__ = [
    "API_CLIENT_LABEL",
    "ModelNetworkPolicy",
    "ModelNetworkPolicyProps",
    "ServingNamespacePolicies",
    "ServingNamespacePoliciesProps",
]
