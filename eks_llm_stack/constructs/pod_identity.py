"""IAM roles for EKS Pod Identity: one trust policy, written once, and the association next to it.

EKS Pod Identity assumes a role as the service principal ``pods.eks.amazonaws.com`` and tags the
session with ``eks-cluster-arn``, ``eks-cluster-name``, ``kubernetes-namespace``,
``kubernetes-service-account``, ``kubernetes-pod-name`` and ``kubernetes-pod-uid`` (EKS user guide,
"Create IAM role with trust policy required by EKS Pod Identity" and "Enable or disable session
tags"). Without conditions on those tags, any Pod Identity association in the account — another
cluster, another namespace — could be pointed at the role. Every role built here trusts one
cluster, one namespace and one service account, and only sessions that carry those tags.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

#: The service principal EKS Pod Identity assumes roles as.
POD_IDENTITY_SERVICE = "pods.eks.amazonaws.com"

#: Session tag keys EKS Pod Identity sets; the trust policy conditions on the first three.
CLUSTER_ARN_TAG = "eks-cluster-arn"
NAMESPACE_TAG = "kubernetes-namespace"
SERVICE_ACCOUNT_TAG = "kubernetes-service-account"


@dataclass(frozen=True)
class _ClusterRefs:
    """What every role and association of one stack reads from one cluster, read once."""

    cluster: eks.ICluster
    name: str
    arn: str


class _StackRefs:
    """Per stack: the Pod Identity service principal (with session tags) and each cluster's name and ARN.

    The same tokens and principal serve every role of the stack, and each read (``Stack.of``,
    ``cluster_name``, ``format_arn``, the principal) is a round trip to the Node.js runtime that every
    model's role would otherwise repeat.
    """

    def __init__(self) -> None:
        self.clusters: list[_ClusterRefs] = []
        self._principal: iam.IPrincipal | None = None

    @property
    def principal(self) -> iam.IPrincipal:
        if self._principal is None:
            self._principal = iam.ServicePrincipal(POD_IDENTITY_SERVICE).with_session_tags()
        return self._principal

    def cluster(self, stack: Stack, cluster: eks.ICluster) -> _ClusterRefs:
        for refs in self.clusters:
            if refs.cluster is cluster:
                return refs
        name = cluster.cluster_name
        arn = stack.format_arn(service="eks", resource="cluster", resource_name=name)
        refs = _ClusterRefs(cluster=cluster, name=name, arn=arn)
        self.clusters.append(refs)
        return refs


_REFS: weakref.WeakKeyDictionary[Stack, _StackRefs] = weakref.WeakKeyDictionary()


def _stack_refs(scope: Construct) -> tuple[Stack, _StackRefs]:
    stack = scope if isinstance(scope, Stack) else Stack.of(scope)
    refs = _REFS.get(stack)
    if refs is None:
        refs = _REFS[stack] = _StackRefs()
    return stack, refs


def cluster_arn(scope: Construct, cluster: eks.ICluster) -> str:
    """The cluster's ARN built from its name in ``scope``'s stack (same account and region), so a role
    in another stack than the cluster needs no cross-stack export of the ARN."""
    stack, refs = _stack_refs(scope)
    return refs.cluster(stack, cluster).arn


def pod_identity_principal(
    *, cluster_arn: str, namespace: str, service_account: str, service: iam.IPrincipal | None = None
) -> iam.IPrincipal:
    """The Pod Identity principal for one service account of one cluster.

    Pod Identity tags its sessions, so the trust policy allows ``sts:TagSession`` next to
    ``sts:AssumeRole``; the conditions apply to both actions. Only the documented session tags are
    used (the cluster ARN carries the account): a condition on a key the service does not send would
    make the role unassumable. ``service`` — the ``pods.eks.amazonaws.com`` principal with session
    tags, when the caller already has one (default: a new one).
    """
    return iam.PrincipalWithConditions(
        service if service is not None else iam.ServicePrincipal(POD_IDENTITY_SERVICE).with_session_tags(),
        {
            "StringEquals": {
                f"aws:RequestTag/{CLUSTER_ARN_TAG}": cluster_arn,
                f"aws:RequestTag/{NAMESPACE_TAG}": namespace,
                f"aws:RequestTag/{SERVICE_ACCOUNT_TAG}": service_account,
            },
        },
    )


@dataclass(frozen=True)
class PodIdentity:
    """A role and, unless an add-on carries it, its ``AWS::EKS::PodIdentityAssociation``."""

    role: iam.Role
    association: eks.CfnPodIdentityAssociation | None


def pod_identity(
    scope: Construct,
    role_id: str,
    *,
    cluster: eks.ICluster,
    namespace: str,
    service_account: str,
    description: str,
    association_id: str | None = None,
) -> PodIdentity:
    """A role only ``namespace/service_account`` on ``cluster`` can assume through EKS Pod Identity.

    Both constructs are created in ``scope`` under the caller's ids (``role_id``, ``association_id``),
    so existing construct paths and logical ids stay as they were. Without ``association_id`` no
    association is created: pass the role to an EKS add-on's ``PodIdentityAssociations`` instead.
    """
    stack, stack_refs = _stack_refs(scope)
    refs = stack_refs.cluster(stack, cluster)
    principal = pod_identity_principal(
        cluster_arn=refs.arn, namespace=namespace, service_account=service_account, service=stack_refs.principal
    )
    role = iam.Role(scope, role_id, assumed_by=principal, description=description)
    association = None
    if association_id is not None:
        association = eks.CfnPodIdentityAssociation(
            scope,
            association_id,
            cluster_name=refs.name,
            namespace=namespace,
            service_account=service_account,
            role_arn=role.role_arn,
        )
    return PodIdentity(role=role, association=association)


def pod_identity_role(
    scope: Construct, id: str, description: str, *, cluster: eks.ICluster, namespace: str, service_account: str
) -> iam.Role:
    """:func:`pod_identity` without an association: the role for an add-on's ``PodIdentityAssociations``."""
    return pod_identity(
        scope, id, cluster=cluster, namespace=namespace, service_account=service_account, description=description
    ).role
