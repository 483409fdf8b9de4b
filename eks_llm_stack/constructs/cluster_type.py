"""The cluster type constructs accept: any ``aws_eks_v2`` cluster, created here or imported.

aws-cdk-lib's Python typing leaves ``kubectl_provider_options`` off ``eks.Cluster``, so mypy does not take a
``Cluster`` for the ``ICluster`` it is at run time; constructs accept both, and a consumer's ``llm.cluster`` type-checks.
"""

from __future__ import annotations

from typing import TypeAlias, cast

from aws_cdk import aws_eks_v2 as eks

ClusterLike: TypeAlias = "eks.ICluster | eks.Cluster"


def as_icluster(cluster: ClusterLike) -> eks.ICluster:
    """The same object, typed as the ``ICluster`` every aws_eks_v2 API takes."""
    return cast(eks.ICluster, cluster)
