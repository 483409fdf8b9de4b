"""``ExternalSecretsOperator``: the External Secrets Operator, with least-privilege EKS Pod Identity.

Least privilege per consumer: the controller's own role may only assume *reader* roles, one per
``ClusterSecretStore`` (one store per consumer namespace). Each reader may read exactly its
consumer's secrets (``secretsmanager:GetSecretValue`` and ``DescribeSecret`` on their ARNs) and
decrypt with their keys through Secrets Manager — so the monitoring namespace cannot pull the
model-hub tokens and the serving namespace cannot pull the Grafana login. The ``ClusterSecretStore`` and ``ExternalSecret`` objects are a cdk8s chart
(:mod:`eks_llm_stack.charts.external_secrets`) applied after the operator is installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import ArnFormat, Stack, Token
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct

from .. import versions
from ..charts.external_secrets import CLUSTER_SECRET_STORE_NAME
from ..charts.kube import system_tolerations
from ..charts.namespaces import namespace_manifest
from ..conventions import SYSTEM_NODE_LABEL
from ..errors import collecting
from ..gates.nag import acknowledge
from ..naming import check_dns_label
from .applied import add_manifest
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
    ``secret_name_prefixes`` — the default reader may also read every secret named ``<prefix>*``
    (default none), e.g. ``llm/api-key/``: the models' keys, so adding a model adds no permission here.
    """

    cluster: eks.ICluster
    secrets: tuple[sm.ISecret, ...]
    keys: tuple[kms.IKey, ...] = ()
    namespace: str = "external-secrets"
    service_account: str = "external-secrets"
    store_name: str = CLUSTER_SECRET_STORE_NAME
    secret_name_prefixes: tuple[str, ...] = ()

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

    Attributes: ``role`` (the controller's: it may only assume the readers), ``reader`` (the default
    reader role, for ``props.secrets``), ``readers``, ``helm_chart`` (apply the store/ExternalSecret
    chart after it), ``store_name``, ``pod_identity_association``.
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
        #: Reader roles by id: one per consumer namespace's store, each reading only its own secrets.
        self.readers: dict[str, iam.Role] = {}
        self._reads: dict[str, iam.PolicyStatement] = {}
        self._decrypts: dict[str, iam.PolicyStatement] = {}
        #: The default reader: ``props.secrets`` (the serving namespace's store assumes it).
        stack = Stack.of(self)
        patterns = [
            stack.format_arn(
                service="secretsmanager",
                resource="secret",
                resource_name=f"{prefix}*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for prefix in props.secret_name_prefixes
        ]
        self.reader = self.add_reader("Reader", secrets=props.secrets, arn_patterns=patterns, keys=props.keys)
        for prefix in props.secret_name_prefixes:
            acknowledge(
                self.reader.node.find_child("DefaultPolicy"),
                f"AwsSolutions-IAM5[Resource::{nag_secret_arn(stack, prefix)}*]",
                f"Read-only on the secrets named {prefix}*: the models' generated API keys, one per model, added "
                "with the model (the prefix holds nothing else).",
            )
        assert identity.association is not None
        self.pod_identity_association = identity.association
        on_system_nodes = {"nodeSelector": {SYSTEM_NODE_LABEL: "true"}, "tolerations": system_tolerations()}
        pin = versions.EXTERNAL_SECRETS
        # A labelled namespace before the release: Helm would create it without Pod Security labels.
        self.namespace = add_manifest(
            self,
            props.cluster,
            f"{id}Namespace",
            namespace_manifest(props.namespace, NAMESPACE_POD_SECURITY),
            name="external-secrets-operator",
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

    def add_reader(
        self,
        id: str,
        *,
        secrets: Sequence[sm.ISecret] = (),
        arn_patterns: Sequence[str] = (),
        keys: Sequence[kms.IKey] = (),
    ) -> iam.Role:
        """A role the controller assumes for one consumer's ``ClusterSecretStore`` (its ``role``).

        It reads ``secrets`` (and secrets whose ARN matches ``arn_patterns``) and decrypts with
        ``keys`` through Secrets Manager — nothing else. The controller's own role can do nothing
        but assume its readers, so a namespace allowed by one store never reaches another's secrets.
        """
        role = iam.Role(
            self,
            f"{id}Role",
            assumed_by=iam.ArnPrincipal(self.role.role_arn),
            description=f"External Secrets store role '{id}': read the secrets of one consumer only",
        )
        self.role.add_to_principal_policy(iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[role.role_arn]))
        resources = [s.secret_arn for s in secrets] + list(arn_patterns)
        self._reads[id] = iam.PolicyStatement(actions=list(READ_ACTIONS), resources=resources)
        if resources:
            role.add_to_policy(self._reads[id])
        self.readers[id] = role
        for key in keys:
            self._allow_decrypt(id, key)
        for secret in secrets:
            if secret.encryption_key is not None:
                self._allow_decrypt(id, secret.encryption_key)
        return role

    def _allow_decrypt(self, reader: str, key: kms.IKey) -> None:
        if reader not in self._decrypts:
            # Only through Secrets Manager: the role cannot decrypt with these keys by calling KMS itself.
            self._decrypts[reader] = iam.PolicyStatement(
                actions=["kms:Decrypt"],
                resources=[key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"secretsmanager.{Stack.of(self).region}.amazonaws.com"}
                },
            )
            self.readers[reader].add_to_policy(self._decrypts[reader])
        elif key.key_arn not in self._decrypts[reader].resources:
            self._decrypts[reader].add_resources(key.key_arn)

    def allow_secret(self, secret: sm.ISecret, *, reader: str = "Reader") -> None:
        """Let one reader (default: the default reader) read one more secret, and decrypt it."""
        statement = self._reads[reader]
        if not statement.resources:
            self.readers[reader].add_to_policy(statement)
        statement.add_resources(secret.secret_arn)
        if secret.encryption_key is not None:
            self._allow_decrypt(reader, secret.encryption_key)


def nag_secret_arn(stack: Stack, name: str) -> str:
    """A secret's ARN as cdk-nag spells it in finding ids (unresolved parts as ``<AWS::...>``)."""

    def part(value: str, pseudo: str) -> str:
        return f"<AWS::{pseudo}>" if Token.is_unresolved(value) else value

    return (
        f"arn:{part(stack.partition, 'Partition')}:secretsmanager:{part(stack.region, 'Region')}:"
        f"{part(stack.account, 'AccountId')}:secret:{name}"
    )
