"""``ExternalSecretsOperator``: the External Secrets Operator, with least-privilege EKS Pod Identity.

The controller may read exactly the secrets it is given (``secretsmanager:GetSecretValue`` and
``DescribeSecret`` on their ARNs) and decrypt with exactly their keys — nothing else in the
account. The ``ClusterSecretStore`` and ``ExternalSecret`` objects are a cdk8s chart
(:mod:`eks_llm_stack.charts.external_secrets`) applied after the operator is installed.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct

from .. import versions
from ..charts.external_secrets import CLUSTER_SECRET_STORE_NAME
from ..charts.names import check_dns_label
from ..charts.namespaces import namespace_manifest
from ..charts.scheduling import system_tolerations
from ..conventions import SYSTEM_NODE_LABEL
from ..errors import collecting
from .pod_identity import pod_identity

#: Pod Security level of the operator's namespace (the chart's pods meet restricted).
NAMESPACE_POD_SECURITY = "restricted"
#: Actions the controller needs to sync a secret; nothing that lists, writes or deletes.
READ_ACTIONS = ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")


@dataclass(frozen=True, kw_only=True)
class ExternalSecretsOperatorProps:
    """The operator.

    ``cluster`` — where to install it. ``secrets`` — the only secrets it may read.
    ``keys`` — KMS keys of those secrets (Decrypt only; default none: secrets under the AWS-managed key).
    ``namespace`` / ``service_account`` — of the controller (default ``external-secrets`` / ``external-secrets``).
    ``store_name`` — name of the ClusterSecretStore the chart creates (default
    :data:`CLUSTER_SECRET_STORE_NAME`); exposed so other charts can reference it.
    """

    cluster: eks.ICluster
    secrets: tuple[sm.ISecret, ...]
    keys: tuple[kms.IKey, ...] = ()
    namespace: str = "external-secrets"
    service_account: str = "external-secrets"
    store_name: str = CLUSTER_SECRET_STORE_NAME

    def __post_init__(self) -> None:
        with collecting("ExternalSecretsOperatorProps") as p:
            p.check(
                bool(self.secrets),
                "secrets",
                (),
                "is empty",
                "pass the secrets to sync, e.g. ModelSecrets(...).secrets.values()",
            )
            check_dns_label(p, "namespace", self.namespace)
            check_dns_label(p, "service_account", self.service_account)
            check_dns_label(p, "store_name", self.store_name)


class ExternalSecretsOperator(Construct):
    """The pinned ESO Helm chart on the system node group, its pod-identity role and association.

    Attributes: ``role``, ``helm_chart`` (apply the store/ExternalSecret chart after it),
    ``store_name``, ``pod_identity_association``.
    """

    def __init__(self, scope: Construct, id: str, *, props: ExternalSecretsOperatorProps) -> None:
        super().__init__(scope, id)
        self.props = props
        self.store_name = props.store_name
        identity = pod_identity(
            self,
            "Role",
            cluster=props.cluster,
            namespace=props.namespace,
            service_account=props.service_account,
            description="External Secrets Operator (EKS Pod Identity): read the model-hub secrets only",
            association_id="PodIdentity",
        )
        self.role = identity.role
        self._read = iam.PolicyStatement(actions=list(READ_ACTIONS), resources=[s.secret_arn for s in props.secrets])
        self.role.add_to_principal_policy(self._read)
        self._decrypt: iam.PolicyStatement | None = None
        for key in props.keys:
            self._allow_decrypt(key)
        assert identity.association is not None
        self.pod_identity_association = identity.association
        on_system_nodes = {"nodeSelector": {SYSTEM_NODE_LABEL: "true"}, "tolerations": system_tolerations()}
        pin = versions.EXTERNAL_SECRETS
        # A labelled namespace before the release: Helm would create it without Pod Security labels.
        self.namespace = props.cluster.add_manifest(
            f"{id}Namespace", namespace_manifest(props.namespace, NAMESPACE_POD_SECURITY)
        )
        self.helm_chart = eks.HelmChart(
            self,
            "Chart",
            cluster=props.cluster,
            chart=pin.chart,
            repository=pin.repository,
            version=pin.version,
            release="external-secrets",
            namespace=props.namespace,
            create_namespace=False,
            # The store and ExternalSecrets are applied right after; their CRDs and webhook must be up.
            wait=True,
            values={
                "installCRDs": True,
                "serviceAccount": {"create": True, "name": props.service_account},
                **on_system_nodes,
                "webhook": on_system_nodes,
                "certController": on_system_nodes,
            },
        )
        # Pods started before the association exists get no credentials until restarted.
        self.helm_chart.node.add_dependency(self.pod_identity_association, self.namespace)

    def _allow_decrypt(self, key: kms.IKey) -> None:
        if self._decrypt is None:
            # Only through Secrets Manager: the role cannot decrypt with these keys by calling KMS itself.
            self._decrypt = iam.PolicyStatement(
                actions=["kms:Decrypt"],
                resources=[key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"secretsmanager.{Stack.of(self).region}.amazonaws.com"}
                },
            )
            self.role.add_to_principal_policy(self._decrypt)
        else:
            self._decrypt.add_resources(key.key_arn)

    def allow_secret(self, secret: sm.ISecret) -> None:
        """Let the operator read one more secret (e.g. Grafana's admin password), and decrypt it."""
        self._read.add_resources(secret.secret_arn)
        if secret.encryption_key is not None:
            self._allow_decrypt(secret.encryption_key)
