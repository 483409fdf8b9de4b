"""IAM roles for EKS Pod Identity: one trust policy, written once."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from constructs import Construct

#: The service principal EKS Pod Identity assumes roles as.
POD_IDENTITY_SERVICE = "pods.eks.amazonaws.com"


def pod_identity_principal() -> iam.IPrincipal:
    """The Pod Identity principal; it tags its sessions (namespace, service account), so the trust
    policy allows ``sts:TagSession`` next to ``sts:AssumeRole``."""
    return iam.ServicePrincipal(POD_IDENTITY_SERVICE).with_session_tags()


def pod_identity_role(scope: Construct, id: str, description: str) -> iam.Role:
    """A role that EKS Pod Identity can assume for a service account; grant it what the pod needs."""
    return iam.Role(scope, id, assumed_by=pod_identity_principal(), description=description)
