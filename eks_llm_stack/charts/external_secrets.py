"""The ``ClusterSecretStore`` for AWS Secrets Manager and one ``ExternalSecret`` per synced secret.

External Secrets re-reads each secret every ``refresh_interval`` and updates the Kubernetes
Secret in place; pods that read it as a mounted volume see a rotated value without a
redeploy (environment variables are read once, at container start).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cdk8s
from aws_cdk import Token
from constructs import Construct

from ..conventions import MANAGED_BY
from ..errors import collecting
from ..naming import check_dns_label

#: Name of the store every chart of this library references (Grafana's admin password too).
CLUSTER_SECRET_STORE_NAME = "aws-secrets-manager"
#: Key of the value inside each synced Kubernetes Secret (``secretKeyRef.key``).
SECRET_VALUE_KEY = "token"
#: ``external-secrets.io/v1``: the API version of the v2.x CRDs.
API_VERSION = "external-secrets.io/v1"

_DURATION = re.compile(r"^[1-9]\d*(s|m|h)$")


@dataclass(frozen=True, kw_only=True)
class SyncedSecret:
    """One Secrets Manager secret synced into a Kubernetes Secret.

    ``name`` — the Kubernetes Secret. ``remote_key`` — the Secrets Manager name or ARN (may be a
    CDK token). ``secret_key`` — the key of the value in the Kubernetes Secret (default ``token``).
    """

    name: str
    remote_key: str
    secret_key: str = SECRET_VALUE_KEY


@dataclass(frozen=True, kw_only=True)
class SecretStore:
    """One more ``ClusterSecretStore``, for one consumer: ``name``, the ``namespaces`` it serves and the
    ``role_arn`` it assumes (may be a token)."""

    name: str
    namespaces: tuple[str, ...]
    role_arn: str | None = None


@dataclass(frozen=True, kw_only=True)
class ExternalSecretsChartProps:
    """The store and the synced secrets.

    ``region`` — of Secrets Manager (may be a token). ``namespace`` — where the Kubernetes Secrets
    go. ``secrets`` — what to sync (may be empty: store only). ``refresh_interval`` — how often
    each is re-read (default ``1h``). ``store_name`` — default :data:`CLUSTER_SECRET_STORE_NAME`.
    ``store_namespaces`` — further namespaces allowed to use the store (default: ``namespace`` only;
    prefer a store per consumer). ``role_arn`` — role the store assumes (default none: the
    controller's own credentials). ``extra_stores`` — more stores, one per other consumer.
    """

    region: str
    namespace: str
    secrets: tuple[SyncedSecret, ...] = ()
    refresh_interval: str = "1h"
    store_name: str = CLUSTER_SECRET_STORE_NAME
    store_namespaces: tuple[str, ...] = ()
    role_arn: str | None = None
    extra_stores: tuple[SecretStore, ...] = ()

    def __post_init__(self) -> None:
        with collecting("ExternalSecretsChartProps") as p:
            check_dns_label(p, "namespace", self.namespace)
            check_dns_label(p, "store_name", self.store_name)
            for ns in self.store_namespaces:
                check_dns_label(p, "store_namespaces", ns)
            for x in self.extra_stores:
                check_dns_label(p, "extra_stores.name", x.name)
                for ns in x.namespaces:
                    check_dns_label(p, "extra_stores.namespaces", ns)
            stores = [self.store_name, *(x.name for x in self.extra_stores)]
            p.check(
                len(set(stores)) == len(stores), "extra_stores", stores, "two stores share a name", "name each once"
            )
            p.check(
                bool(_DURATION.match(self.refresh_interval)),
                "refresh_interval",
                self.refresh_interval,
                "is not a refresh interval",
                "write 30s, 15m or 1h",
            )
            names = [s.name for s in self.secrets]
            p.check(
                len(set(names)) == len(names), "secrets", names, "two secrets share a name", "give each a distinct name"
            )
            for s in self.secrets:
                check_dns_label(p, "secrets.name", s.name)
                p.check(
                    Token.is_unresolved(s.remote_key) or bool(s.remote_key),
                    "secrets.remote_key",
                    s.remote_key,
                    "is empty",
                    "give the Secrets Manager name or ARN",
                )
                p.check(
                    bool(re.fullmatch(r"[-._a-zA-Z0-9]+", s.secret_key)),
                    "secrets.secret_key",
                    s.secret_key,
                    "is not a valid Secret data key",
                    "use letters, digits, '-', '_' or '.'",
                )


def store_spec(*, region: str, namespaces: list[str], role_arn: str | None) -> dict:
    """The ``spec`` of a ClusterSecretStore for Secrets Manager."""
    aws: dict = {"service": "SecretsManager", "region": region}
    if role_arn is not None:
        # The controller's Pod Identity credentials assume this consumer's reader role.
        aws["role"] = role_arn
    # No `auth`: the controller's own credentials (EKS Pod Identity) are used. Only these namespaces
    # may point an ExternalSecret at the store.
    return {"provider": {"aws": aws}, "conditions": [{"namespaces": namespaces}]}


class ExternalSecretsChart(cdk8s.Chart):
    """A ``ClusterSecretStore`` (AWS Secrets Manager, controller credentials from Pod Identity) and
    one ``ExternalSecret`` per :class:`SyncedSecret`."""

    def __init__(self, scope: Construct, id: str, *, props: ExternalSecretsChartProps) -> None:
        super().__init__(scope, id, disable_resource_name_hashes=True)
        labels = dict(MANAGED_BY)
        allowed = list(dict.fromkeys((props.namespace, *props.store_namespaces)))
        self._store("store", props.store_name, allowed, props.region, props.role_arn)
        for x in props.extra_stores:
            self._store(f"store-{x.name}", x.name, list(x.namespaces), props.region, x.role_arn)
        for s in props.secrets:
            obj = cdk8s.ApiObject(
                self,
                f"secret-{s.name}",
                api_version=API_VERSION,
                kind="ExternalSecret",
                metadata=cdk8s.ApiObjectMetadata(name=s.name, namespace=props.namespace, labels=labels),
            )
            obj.add_json_patch(
                cdk8s.JsonPatch.add(
                    "/spec",
                    {
                        "refreshInterval": props.refresh_interval,
                        "secretStoreRef": {"kind": "ClusterSecretStore", "name": props.store_name},
                        "target": {"name": s.name, "creationPolicy": "Owner", "deletionPolicy": "Retain"},
                        "data": [{"secretKey": s.secret_key, "remoteRef": {"key": s.remote_key}}],
                    },
                )
            )

    def _store(self, id: str, name: str, namespaces: list[str], region: str, role_arn: str | None) -> None:
        store = cdk8s.ApiObject(
            self,
            id,
            api_version=API_VERSION,
            kind="ClusterSecretStore",
            metadata=cdk8s.ApiObjectMetadata(name=name, labels=dict(MANAGED_BY)),
        )
        # ApiObject takes only apiVersion/kind/metadata as arguments; the spec goes in as a patch.
        store.add_json_patch(
            cdk8s.JsonPatch.add("/spec", store_spec(region=region, namespaces=namespaces, role_arn=role_arn))
        )


def external_secret(
    scope: Construct,
    id: str,
    *,
    secret: SyncedSecret,
    namespace: str,
    store_name: str = CLUSTER_SECRET_STORE_NAME,
    refresh_interval: str = "1h",
) -> cdk8s.ApiObject:
    """One ``ExternalSecret`` outside the chart (e.g. a model's API key, in the model's own chart)."""
    obj = cdk8s.ApiObject(
        scope,
        id,
        api_version=API_VERSION,
        kind="ExternalSecret",
        metadata=cdk8s.ApiObjectMetadata(name=secret.name, namespace=namespace, labels=dict(MANAGED_BY)),
    )
    obj.add_json_patch(
        cdk8s.JsonPatch.add(
            "/spec",
            {
                "refreshInterval": refresh_interval,
                "secretStoreRef": {"kind": "ClusterSecretStore", "name": store_name},
                "target": {"name": secret.name, "creationPolicy": "Owner", "deletionPolicy": "Retain"},
                "data": [{"secretKey": secret.secret_key, "remoteRef": {"key": secret.remote_key}}],
            },
        )
    )
    return obj
