"""``ModelChart``: everything one model is in the cluster, as one cdk8s chart.

The vLLM workload with its Service, PDB and service account (:class:`~eks_llm_stack.charts.vllm.VllmModel`),
and, when given: its NetworkPolicy, the ExternalSecret of its API key, its KEDA autoscaler, the image
prepull DaemonSet and the Job that fetches its weights into the cache volume. The Serving stack
applies one per model (``dist/manifests/40-serving/model-<name>.yaml``); GitOps users and other
repositories build the same chart from the same props.
"""

from __future__ import annotations

from dataclasses import dataclass

import cdk8s
from constructs import Construct

from ..errors import collecting
from ..naming import check_dns_label
from .autoscaling import ModelAutoscaler, ModelAutoscalerProps
from .external_secrets import CLUSTER_SECRET_STORE_NAME, SyncedSecret, external_secret
from .model_fetch import ModelFetch, ModelFetchJob
from .network_policies import ModelNetworkPolicy, ModelNetworkPolicyProps
from .prepull import ImagePrepull, ImagePrepullProps
from .vllm import VllmModel, VllmModelProps, _NamespaceInApp


@dataclass(frozen=True, kw_only=True)
class ModelApiKey:
    """The model's API key, synced from Secrets Manager into the Secret its pods mount.

    ``secret`` — Kubernetes Secret name, remote key and key inside it. ``store_name`` — the
    ``ClusterSecretStore`` that may read it (default :data:`CLUSTER_SECRET_STORE_NAME`).
    ``refresh_interval`` — how often it is re-read (default ``1h``).
    """

    secret: SyncedSecret
    store_name: str = CLUSTER_SECRET_STORE_NAME
    refresh_interval: str = "1h"

    def __post_init__(self) -> None:
        with collecting("ModelApiKey") as p:
            check_dns_label(p, "store_name", self.store_name)


@dataclass(frozen=True, kw_only=True)
class ModelChartProps:
    """One model and what goes with it.

    ``model`` — the vLLM workload (required; its ``namespace`` is every object's namespace).
    ``network_policy`` — who may reach it (default none: the namespace's own policies apply).
    ``api_key`` — the ExternalSecret of its API key; required when ``model.api_key_secret`` is set,
    and its Secret name must be that one. ``autoscaler`` / ``prepull`` / ``fetch`` — KEDA scaling, the
    image prepull DaemonSet, the weights fetch Job (default none). ``external_namespace`` — the
    namespace is created outside this cdk8s app (default False: a Namespace of that name must be in the
    same app, checked at synth).
    """

    model: VllmModelProps
    network_policy: ModelNetworkPolicyProps | None = None
    api_key: ModelApiKey | None = None
    autoscaler: ModelAutoscalerProps | None = None
    prepull: ImagePrepullProps | None = None
    fetch: ModelFetch | None = None
    external_namespace: bool = False

    def __post_init__(self) -> None:
        with collecting("ModelChartProps") as p:
            wanted = self.model.api_key_secret
            given = self.api_key.secret.name if self.api_key is not None else None
            p.check(
                wanted == given,
                "api_key",
                given,
                f"must sync the Secret the model mounts ({wanted!r})"
                if wanted
                else "is given but the model mounts no API key",
                f"pass api_key=ModelApiKey(secret=SyncedSecret(name={wanted!r}, ...))"
                if wanted
                else "drop api_key, or set model.api_key_secret",
            )


class ModelChart(cdk8s.Chart):
    """The chart of one model. Attributes: ``model`` (the :class:`VllmModel`), ``api_key``,
    ``autoscaler``, ``prepull``, ``fetch`` (``None`` when not in the props)."""

    def __init__(self, scope: Construct, id: str, *, props: ModelChartProps) -> None:
        super().__init__(scope, id, disable_resource_name_hashes=True)
        self.props = props
        namespace = props.model.namespace
        self.model = VllmModel(self, "Model", props=props.model)
        if not props.external_namespace:
            _NamespaceInApp.expect(self, namespace, scope=scope, id=id)
        if props.network_policy is not None:
            ModelNetworkPolicy(self, "NetworkPolicy", props=props.network_policy)
        self.api_key: cdk8s.ApiObject | None = None
        if props.api_key is not None:
            self.api_key = external_secret(
                self,
                "ApiKey",
                secret=props.api_key.secret,
                namespace=namespace,
                store_name=props.api_key.store_name,
                refresh_interval=props.api_key.refresh_interval,
            )
            # Pods mount the Secret: it must exist before they start.
            self.model.workload.add_dependency(self.api_key)
        self.autoscaler = (
            ModelAutoscaler(self, "Autoscaler", props=props.autoscaler) if props.autoscaler is not None else None
        )
        self.prepull = ImagePrepull(self, "Prepull", props=props.prepull) if props.prepull is not None else None
        self.fetch: ModelFetchJob | None = None
        if props.fetch is not None:
            self.fetch = ModelFetchJob(self, "Fetch", props=props.fetch, namespace=namespace)
            # The Job runs as the model's service account (S3 read); create that first.
            self.fetch.add_dependency(self.model.service_account)


__all__ = ["ModelApiKey", "ModelChart", "ModelChartProps"]
