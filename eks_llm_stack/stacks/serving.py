"""``Serving``: the models. Changes most often; adding a model touches only this stack."""

from __future__ import annotations

from typing import Any

from aws_cdk import Annotations
from aws_cdk import aws_iam as iam
from constructs import Construct

from ..charts.external_secrets import SyncedSecret
from ..charts.model import ModelApiKey, ModelChart, ModelChartProps
from ..config import Profile
from ..config.serving import ModelSource
from ..constructs.model_secrets import API_KEY_FILE, api_key_secret_name
from ..constructs.pod_identity import pod_identity
from ..constructs.serving_controllers import nag_partition
from ..conventions import SERVING_STACK
from ..gates.nag import acknowledge
from ..naming import pascal_case
from ..plan import PlatformPlan
from ..plan.models import (  # noqa: F401  (re-exported: their former home)
    CACHE_CLAIMS,
    HF_TOKEN_SECRET,
    ModelDeployment,
    load_balancer_controller_enabled,
    model_network_policy,
    plan_models,
    serving_controllers_enabled,
    unpinned_weights,
    vpc_cidr,
)
from .base import ChartRegistry, PlatformStackBase
from .platform import PlatformStack


class ServingStack(PlatformStackBase):
    def __init__(
        self,
        scope: Construct,
        *,
        profile: Profile,
        plan: PlatformPlan,
        platform: PlatformStack,
        charts: ChartRegistry,
        expires_at: str | None = None,
        deployment_id: str | None = None,
    ) -> None:
        super().__init__(
            scope,
            SERVING_STACK,
            profile=profile,
            description="model endpoints (vLLM)",
            expires_at=expires_at,
            deployment_id=deployment_id,
        )
        self.add_stack_dependency(platform)
        self.cluster = platform.cluster

        # -- models ---------------------------------------------------------------------------------
        #: ``name -> ModelDeployment`` for every model of the profile; ``model_manifests`` the applied charts.
        self.models: dict[str, ModelDeployment] = {}
        self.model_manifests: dict[str, Any] = {}
        self._partition_pair: tuple[str, str] | None = None
        if profile.models:
            self._add_models(profile, plan, platform, charts)

    def _add_models(self, profile: Profile, plan: PlatformPlan, platform: PlatformStack, charts: ChartRegistry) -> None:
        deployments = plan.models
        if not profile.ephemeral:
            for warning in unpinned_weights(profile):
                Annotations.of(self).add_warning_v2("eks-llm-stack:unpinned-weights", warning)
        # Controllers, namespace, cache claims and the HF token Secret come from the Platform stack.
        after = [platform.namespaces, *getattr(platform, "serving_controller_charts", ())]
        for attr in ("storage_manifest", "external_secrets_manifest"):
            if getattr(platform, attr, None) is not None:
                after.append(getattr(platform, attr))
        for d in deployments:
            m = d.config
            api_key = None
            if d.model.api_key_secret is not None:
                # The key lives in the Data stack; the serving store's reader may read every model's key.
                api_key = ModelApiKey(
                    secret=SyncedSecret(
                        name=d.model.api_key_secret,
                        remote_key=api_key_secret_name(profile.prefix, m.name),
                        secret_key=API_KEY_FILE,
                    ),
                    store_name=platform.external_secrets.store_name,
                    refresh_interval=profile.secrets.refresh_interval,
                )
            chart = ModelChart(
                charts.app,
                f"model-{m.name}",
                props=ModelChartProps(
                    model=d.model,
                    network_policy=model_network_policy(profile, d),
                    api_key=api_key,
                    autoscaler=d.autoscaler,
                    prepull=d.prepull,
                    fetch=d.fetch,
                ),
            )
            if d.s3 is not None:
                self._grant_s3(m.name, profile, d.s3)
            self.models[m.name] = d
            self.model_manifests[m.name] = charts.apply(
                self, f"model-{m.name}", chart, self.cluster, depends_on=tuple(after)
            )

    def _grant_s3(self, name: str, profile: Profile, src: ModelSource) -> None:
        """Read access to the model's S3 prefix for its service account, through EKS Pod Identity."""

        cid = pascal_case(name)
        role = pod_identity(
            self,
            f"{cid}WeightsRole",
            cluster=self.cluster,
            namespace=profile.serving_namespace,
            service_account=name,
            description=f"model {name}: read its weights from {src.location}",
            association_id=f"{cid}WeightsPodIdentity",
        ).role
        partition, finding_partition = self._partitions()
        bucket_arn = f"arn:{partition}:s3:::{src.bucket}"
        prefix = f"{src.prefix}/" if src.prefix else ""
        list_bucket: dict[str, Any] = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn}
        if prefix:
            list_bucket["Condition"] = {"StringLike": {"s3:prefix": [f"{prefix}*"]}}
        statements = [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{bucket_arn}/{prefix}*"}, list_bucket]
        policy = iam.Policy(
            self,
            f"{cid}WeightsPolicy",
            # Attached here rather than with attach_to_role: one round trip less, the same policy.
            roles=[role],
            # One document from JSON instead of one PolicyStatement per statement: a round trip less per model.
            document=iam.PolicyDocument.from_json({"Statement": statements}),
        )
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::arn:{finding_partition}:s3:::{src.bucket}/{prefix}*]",
            "Read-only on the objects under the model's own S3 prefix: the weight files are not known at synth time.",
        )

    def _partitions(self) -> tuple[str, str]:
        """The stack's partition (a token unless the profile pins the environment) and the same as cdk-nag
        spells it in finding ids; read once: every model's grant uses them, and each read is a round trip to
        the Node.js runtime."""
        if self._partition_pair is None:
            self._partition_pair = (self.partition, nag_partition(self))
        return self._partition_pair
