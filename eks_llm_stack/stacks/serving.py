"""``Serving``: the models. Changes most often; adding a model touches only this stack."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from constructs import Construct

from ..config import Profile
from .base import ChartRegistry, PlatformStackBase
from .platform import PlatformStack

if TYPE_CHECKING:
    from ..charts.autoscaling import ModelAutoscalerProps
    from ..charts.network_policies import ModelNetworkPolicyProps
    from ..charts.prepull import ImagePrepullProps
    from ..charts.storage import ModelFetch
    from ..charts.vllm import VllmModelProps
    from ..config.compute import GpuNodePoolProps
    from ..config.serving import ModelConfig, ModelSource
    from ..sizing import Plan

#: The Secrets Manager name (without prefix) of the Hugging Face token (see config/data.py).
HF_TOKEN_SECRET = "huggingface-token"
#: Claims the storage chart creates for the model caches (charts/storage.py defaults).
CACHE_CLAIMS = {"fsx": "model-cache-fsx", "efs": "model-cache-efs"}


def serving_controllers_enabled(profile: Profile) -> bool:
    """Whether the Platform stack installs LWS and KEDA: with GPU pools or any model.

    Decided by the cluster, not by the model list's content, so adding a model to a serving
    platform never changes the Platform stack.
    """
    return profile.compute.enabled or bool(profile.models)


def load_balancer_controller_enabled(profile: Profile) -> bool:
    """The AWS Load Balancer Controller is installed once a model asks for a load balancer."""
    return any(m.ingress is not None for m in profile.models)


@dataclass(frozen=True, kw_only=True)
class ModelDeployment:
    """Everything one profile model becomes: sizing plan, pool, chart props."""

    config: ModelConfig
    plan: Plan | None
    #: The pools that launch the plan's instance type (empty for the simulator).
    pools: tuple[GpuNodePoolProps, ...]
    model: VllmModelProps
    fetch: ModelFetch | None
    #: The S3 source whose objects the model's service account may read (None: no S3 access).
    s3: ModelSource | None
    autoscaler: ModelAutoscalerProps | None
    prepull: ImagePrepullProps | None


def plan_models(profile: Profile) -> tuple[ModelDeployment, ...]:
    """Size and place every model of ``profile``; ``ConfigError`` listing every problem of every model.

    Cross-section rules live here because they need the compute pools, the storage section and
    the sizing engine: a model that fits none of its pool's instances, TP larger than the GPUs
    per node, a multi-node model on a pool without EFA or a placement group, a grace period
    beyond the spot notice, a cache the profile does not have, duplicate names.
    """
    from ..config.serving import duplicate_names
    from ..errors import Problems

    p = Problems(f"profile '{profile.name}' models")
    dupes = duplicate_names(profile.models)
    if dupes:
        p.add(
            "models",
            f"model names {dupes} are used more than once (each names a Deployment and a Service)",
            "give every model a different name",
            dupes,
        )
    out = [d for i, m in enumerate(profile.models) if (d := _plan_one(profile, m, f"models[{i}]", p)) is not None]
    p.raise_if_any()
    return tuple(out)


def _choose_pools(profile: Profile, m: ModelConfig, where: str, p: Any) -> tuple[GpuNodePoolProps, ...]:
    """The pools a model may run on: those named, else every pool of the right workload."""
    pools = profile.compute.pool_props()
    names = [x.name for x in pools]
    if not pools:
        p.add(
            f"{where}.pool",
            "the profile has no GPU pool to run the model on",
            "add a pool under compute.pools (e.g. name: inference, preset: inference), or use engine: simulator",
            m.pool,
        )
        return ()
    if m.pool_names:
        unknown = [n for n in m.pool_names if n not in names]
        p.check(
            not unknown,
            f"{where}.pool",
            m.pool,
            f"names no pool of compute.pools: {unknown}",
            f"use pools from {names}",
        )
        return () if unknown else tuple(x for x in pools if x.name in m.pool_names)
    wants_multi = m.multi_node is True or (m.pipeline_parallel_size or 1) > 1
    kind = "training" if wants_multi else "inference"
    found = tuple(x for x in pools if x.workload == kind) or (tuple(pools) if len(pools) == 1 else ())
    if not found:
        p.add(
            f"{where}.pool", f"no {kind} pool to default to (pools: {names})", f"name the pool: pool: <one of {names}>"
        )
    return found


def _plan_one(profile: Profile, m: ModelConfig, where: str, p: Any) -> ModelDeployment | None:
    from ..charts.autoscaling import DEFAULT_PROMETHEUS_URL, ModelAutoscalerProps
    from ..charts.prepull import ImagePrepullProps
    from ..charts.storage import ModelFetch
    from ..charts.vllm import ModelIngress, VllmModelProps, WeightsFromClaim, WeightsFromHub, WeightsFromS3
    from ..config.data import kubernetes_secret_name
    from ..config.serving import SPOT_NOTICE_SECONDS
    from ..constructs.model_secrets import api_key_kubernetes_secret as kubernetes_api_key_secret
    from ..errors import ConfigError
    from ..sizing import SizingRequest, size

    ns = profile.serving_namespace
    hf_secret = (
        kubernetes_secret_name(HF_TOKEN_SECRET)
        if profile.secrets.enabled and HF_TOKEN_SECRET in profile.secrets.names
        else None
    )
    ingress = None
    if m.ingress is not None:
        i = m.ingress
        # The VPC by default: the controller's own default would be 0.0.0.0/0.
        vpc = vpc_cidr(profile)
        cidrs: tuple[str, ...] = i.allowed_cidrs or ((vpc,) if vpc else ())
        if p.check(
            bool(cidrs),
            f"{where}.ingress.allowed_cidrs",
            (),
            "has no default with an imported VPC (network.vpc_id): its CIDR is unknown here",
            "list the client CIDRs, e.g. the VPC's CIDR",
        ):
            ingress = ModelIngress(
                kind=i.kind,
                scheme=i.scheme,
                certificate_arn=i.certificate_arn,
                host=i.host,
                allowed_cidrs=cidrs,
                access_logs_bucket=i.access_logs_bucket,
                access_logs_prefix=i.access_logs_prefix,
                waf_acl_arn=i.waf_acl_arn,
            )
    from .data import api_key_models

    api_key = kubernetes_api_key_secret(m.name) if m.name in api_key_models(profile) else None
    problems_before = len(p.problems)

    if m.engine == "simulator":
        props = VllmModelProps(
            name=m.name,
            namespace=ns,
            engine="simulator",
            image=m.image,
            replicas=None if m.autoscaled else m.replicas.min,
            termination_grace_seconds=m.termination_grace_seconds,
            startup_seconds=m.startup_seconds,
            ingress=ingress,
        )
        return ModelDeployment(
            config=m,
            plan=None,
            pools=(),
            model=props,
            fetch=None,
            s3=None,
            autoscaler=_autoscaler(m, ns, props, DEFAULT_PROMETHEUS_URL, ModelAutoscalerProps),
            prepull=None,
        )

    pools = _choose_pools(profile, m, where, p)
    if not pools:
        return None
    label = "pool '" + pools[0].name + "'" if len(pools) == 1 else "pools " + ", ".join(x.name for x in pools)
    instances = {i.name: i for x in pools for i in x.catalog_instances()}
    types = tuple(sorted(instances))
    if m.instance_type is not None and m.instance_type not in types:
        p.add(
            f"{where}.instance_type",
            f"is not an instance type {label} launches ({', '.join(types) or 'none'})",
            "use one of them, or add it to the pool's instance_types / families",
            m.instance_type,
        )
        return None
    max_gpus = max((i.gpu_count for i in instances.values()), default=0)
    if m.tensor_parallel_size is not None and m.instance_type is None and m.tensor_parallel_size > max_gpus:
        p.add(
            f"{where}.tensor_parallel_size",
            f"is larger than the GPUs per node of {label} (at most {max_gpus})",
            f"use at most {max_gpus}; add pipeline_parallel_size to span nodes, or use a pool of larger instances",
            m.tensor_parallel_size,
        )
        return None
    try:
        plan = size(
            SizingRequest(
                model=m.sizing_model or "",
                dtype=m.dtype,
                kv_cache_dtype=m.kv_cache_dtype,
                max_model_len=m.max_model_len,
                concurrency=m.concurrency,
                instance_types=types,
                instance_type=m.instance_type,
                tensor_parallel_size=m.tensor_parallel_size,
                pipeline_parallel_size=m.pipeline_parallel_size,
                gpu_memory_utilization=m.gpu_memory_utilization,
                replicas=max(m.replicas.min, 1),
            )
        )
    except ConfigError as err:
        for prob in err.problems:
            field = f"{where}.{prob.field}" if prob.field else where
            # prob.value may be the "no value" sentinel; passing it on keeps it that way.
            p.add(field, f"does not fit {label} ({', '.join(types)}): {prob.message}", prob.fix, prob.value)
        return None

    multi = plan.pipeline_parallel_size > 1
    if m.multi_node is True and not multi:
        p.add(
            f"{where}.multi_node",
            f"the plan fits one node ({plan.instance_type}, TP {plan.tensor_parallel_size})",
            "remove multi_node, or pin pipeline_parallel_size: 2 or more",
            True,
        )
    if m.multi_node is False and multi:
        p.add(
            f"{where}.multi_node",
            f"the model needs {plan.nodes} nodes of {plan.instance_type}",
            "remove multi_node: false, quantize (dtype), shorten max_model_len, or use a pool of larger instances",
            False,
        )
    # Only pools that launch the chosen type will ever run the model.
    pools = tuple(x for x in pools if plan.instance_type in {i.name for i in x.catalog_instances()})
    if multi:
        weak = [x.name for x in pools if not (x.efa and x.placement_group is not None)]
        p.check(
            not weak,
            f"{where}.pool",
            weak,
            f"a multi-node model ({plan.nodes} nodes of {plan.instance_type}) needs pools with EFA "
            "and a placement group",
            "put it on an EFA pool with a cluster placement group (compute.pools[].preset: training)",
        )
        spot = [x.name for x in pools if "spot" in x.capacity_types]
        p.check(
            not spot,
            f"{where}.pool",
            spot,
            "a multi-node model on spot capacity: one interruption stops the whole group",
            "use an on-demand or reserved pool",
        )
    spot_pools = [x.name for x in pools if "spot" in x.capacity_types]
    if spot_pools:
        p.check(
            m.termination_grace_seconds <= SPOT_NOTICE_SECONDS,
            f"{where}.termination_grace_seconds",
            m.termination_grace_seconds,
            f"exceeds the {SPOT_NOTICE_SECONDS}-second spot interruption notice (spot pools: {', '.join(spot_pools)})",
            "use 110 or less, or on-demand pools only",
        )

    src = m.parsed_source
    assert src is not None
    weights_gib = int(plan.weights_gib * 1.1) + 10
    fetch = None
    s3 = src if src.kind == "s3" else None
    if src.kind == "pvc":
        weights: Any = WeightsFromClaim(claim_name=src.location, path=src.detail)
    else:
        cache = m.cache or (
            "efs" if profile.storage.efs is not None else "fsx" if profile.storage.fsx is not None else "none"
        )
        if cache != "none" and getattr(profile.storage, cache) is None:
            p.add(
                f"{where}.cache",
                f"the profile has no {cache} storage",
                f"add storage.{cache}, or use cache: none (fetch at every start)",
                cache,
            )
            return None
        if cache == "none":
            weights = (
                WeightsFromS3(uri=src.location, size_gib=weights_gib)
                if src.kind == "s3"
                else WeightsFromHub(repo=src.location, revision=src.detail, size_gib=weights_gib)
            )
        else:
            # One directory and one Job per source: a Job's spec is immutable, and a changed source
            # must neither mix files with the old one nor let pods start on the old marker.
            tag = hashlib.sha256(m.source.encode()).hexdigest()[:8] if m.source else "none"
            target = f"models/{m.name}-{tag}"
            fetch = ModelFetch(
                name=f"{m.name}-{tag}",
                claim_name=CACHE_CLAIMS[cache],
                target_dir=target,
                s3_uri=src.location if src.kind == "s3" else None,
                hf_repo=src.location if src.kind == "hf" else None,
                hf_revision=src.detail if src.kind == "hf" else "main",
                hf_token_secret=hf_secret or "huggingface-token",
                service_account=m.name,
                # On the model's GPU pools: their nodes carry the storage-client security group.
                pools=tuple(x.name for x in pools),
            )
            weights = WeightsFromClaim(claim_name=CACHE_CLAIMS[cache], path=target, wait_for_fetch=True)
    if len(p.problems) > problems_before:
        return None
    inst = plan.instance_type
    from ..catalog import get_instance

    props = VllmModelProps(
        name=m.name,
        namespace=ns,
        engine="vllm",
        weights=weights,
        image=m.image,
        args=(*plan.vllm_args, *m.vllm_args),
        tensor_parallel_size=plan.tensor_parallel_size,
        pipeline_parallel_size=plan.pipeline_parallel_size,
        efa_interfaces=get_instance(inst).max_efa_interfaces if multi else 0,
        pools=tuple(x.name for x in pools),
        instance_type=inst,
        replicas=None if m.autoscaled else m.replicas.min,
        hf_token_secret=hf_secret,
        api_key_secret=api_key,
        termination_grace_seconds=m.termination_grace_seconds,
        startup_seconds=m.startup_seconds,
        ingress=ingress,
    )
    prometheus = m.autoscaling.prometheus_url or DEFAULT_PROMETHEUS_URL
    prepull = (
        ImagePrepullProps(name=f"prepull-{m.name}", namespace=ns, images=(props.effective_image,), pools=props.pools)
        if m.prepull
        else None
    )
    return ModelDeployment(
        config=m,
        plan=plan,
        pools=pools,
        model=props,
        fetch=fetch,
        s3=s3,
        autoscaler=_autoscaler(m, ns, props, prometheus, ModelAutoscalerProps),
        prepull=prepull,
    )


def model_network_policy(profile: Profile, d: ModelDeployment) -> ModelNetworkPolicyProps:
    """What the model's pods may send and receive (see :mod:`eks_llm_stack.charts.network_policies`)."""
    from ..charts.network_policies import ModelNetworkPolicyProps
    from ..charts.vllm import PORT, WeightsFromHub, WeightsFromS3

    m = d.model
    weights = m.weights if m.engine == "vllm" else None
    obs = profile.observability
    cidr = vpc_cidr(profile)
    return ModelNetworkPolicyProps(
        name=m.name,
        namespace=m.namespace,
        pod_labels=m.selector_labels,
        port=PORT,
        monitoring_namespace=obs.namespace if obs.enabled else None,
        # The load balancer sends from its own addresses in the VPC (ip targets).
        load_balancer_cidrs=(cidr,) if m.ingress is not None and cidr else (),
        internet_egress=isinstance(weights, (WeightsFromHub, WeightsFromS3)),
        pod_identity=isinstance(weights, WeightsFromS3),
        lws_name=m.workload_name if m.multi_node else None,
        max_groups=max(d.config.replicas.max, 1) if m.multi_node else 0,
    )


def unpinned_weights(profile: Profile) -> list[str]:
    """A line per ``hf://`` source not pinned to a commit: a branch or tag can change the weights a
    restarted pod loads (and what was reviewed is no longer what runs)."""
    import re

    out = []
    for i, m in enumerate(profile.models):
        src = m.parsed_source
        if src is not None and src.kind == "hf" and not re.fullmatch(r"[0-9a-f]{40}", src.detail or ""):
            out.append(
                f"models[{i}].source: '{m.source}' follows the revision '{src.detail or 'main'}', not a commit "
                f"-- fix: pin it, hf://{src.location}@<40-character commit sha> (the Hub's 'Files' tab shows it)"
            )
    return out


def vpc_cidr(profile: Profile) -> str | None:
    """The CIDR of the VPC the profile creates (None for an imported VPC: the profile does not know it)."""
    return profile.network.cidr if profile.network.vpc_id is None else None


def _autoscaler(
    m: ModelConfig, ns: str, props: VllmModelProps, prometheus: str, cls: Any
) -> ModelAutoscalerProps | None:
    if not m.autoscaled:
        return None
    a = m.autoscaling
    multi = props.multi_node
    return cls(
        name=m.name,
        namespace=ns,
        model_name=m.name,
        target_api_version="leaderworkerset.x-k8s.io/v1" if multi else "apps/v1",
        target_kind="LeaderWorkerSet" if multi else "Deployment",
        target_name=props.workload_name,
        min_replicas=m.replicas.min,
        max_replicas=m.replicas.max,
        scale_to_zero=m.scale_to_zero,
        idle_minutes=a.idle_minutes,
        waiting_per_replica=a.waiting_per_replica,
        kv_cache_target=a.kv_cache_target,
        polling_seconds=a.polling_seconds,
        scale_down_seconds=a.scale_down_seconds,
        prometheus_url=prometheus,
    )


class ServingStack(PlatformStackBase):
    def __init__(
        self,
        scope: Construct,
        *,
        profile: Profile,
        platform: PlatformStack,
        charts: ChartRegistry,
        expires_at: str | None = None,
        deployment_id: str | None = None,
    ) -> None:
        super().__init__(
            scope,
            "Serving",
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
        if profile.models:
            self._add_models(profile, platform, charts)

    def _add_models(self, profile: Profile, platform: PlatformStack, charts: ChartRegistry) -> None:
        import cdk8s

        from ..charts.autoscaling import ModelAutoscaler
        from ..charts.external_secrets import SyncedSecret, external_secret
        from ..charts.network_policies import ModelNetworkPolicy
        from ..charts.prepull import ImagePrepull
        from ..charts.storage import model_fetch_job
        from ..charts.vllm import VllmModel
        from ..constructs.model_secrets import API_KEY_FILE, api_key_secret_name

        deployments = plan_models(profile)
        if not profile.ephemeral:
            from aws_cdk import Annotations

            for warning in unpinned_weights(profile):
                Annotations.of(self).add_warning_v2("eks-llm-stack:unpinned-weights", warning)
        # Controllers, namespace, cache claims and the HF token Secret come from the Platform stack.
        after = [platform.namespaces, *getattr(platform, "serving_controller_charts", ())]
        for attr in ("storage_manifest", "external_secrets_manifest"):
            if getattr(platform, attr, None) is not None:
                after.append(getattr(platform, attr))
        for d in deployments:
            m = d.config
            chart = cdk8s.Chart(charts.app, f"model-{m.name}", disable_resource_name_hashes=True)
            model = VllmModel(chart, "Model", props=d.model)
            ModelNetworkPolicy(chart, "NetworkPolicy", props=model_network_policy(profile, d))
            if d.model.api_key_secret is not None:
                # The key lives in the Data stack; the serving store's reader may read every model's key.
                key = external_secret(
                    chart,
                    "ApiKey",
                    secret=SyncedSecret(
                        name=d.model.api_key_secret,
                        remote_key=api_key_secret_name(profile.prefix, m.name),
                        secret_key=API_KEY_FILE,
                    ),
                    namespace=profile.serving_namespace,
                    store_name=platform.external_secrets.store_name,
                    refresh_interval=profile.secrets.refresh_interval,
                )
                # Pods mount the Secret: it must exist before they start.
                model.workload.add_dependency(key)
            if d.autoscaler is not None:
                ModelAutoscaler(chart, "Autoscaler", props=d.autoscaler)
            if d.prepull is not None:
                ImagePrepull(chart, "Prepull", props=d.prepull)
            if d.fetch is not None:
                doc = model_fetch_job(d.fetch, profile.serving_namespace)
                meta = doc["metadata"]
                job = cdk8s.ApiObject(
                    chart,
                    "Fetch",
                    api_version=doc["apiVersion"],
                    kind=doc["kind"],
                    metadata=cdk8s.ApiObjectMetadata(
                        name=meta["name"],
                        namespace=meta["namespace"],
                        labels=meta["labels"],
                        annotations=meta.get("annotations"),
                    ),
                )
                job.add_json_patch(cdk8s.JsonPatch.add("/spec", doc["spec"]))
                # The Job runs as the model's service account (S3 read); create that first.
                job.add_dependency(model.service_account)
            if d.s3 is not None:
                self._grant_s3(m.name, profile, d.s3)
            self.models[m.name] = d
            self.model_manifests[m.name] = charts.apply(
                self, f"model-{m.name}", chart, self.cluster, depends_on=tuple(after)
            )

    def _grant_s3(self, name: str, profile: Profile, src: ModelSource) -> None:
        """Read access to the model's S3 prefix for its service account, through EKS Pod Identity."""
        from aws_cdk import aws_iam as iam

        from ..constructs.pod_identity import pod_identity

        cid = "".join(x.capitalize() for x in name.split("-"))
        role = pod_identity(
            self,
            f"{cid}WeightsRole",
            cluster=self.cluster,
            namespace=profile.serving_namespace,
            service_account=name,
            description=f"model {name}: read its weights from {src.location}",
            association_id=f"{cid}WeightsPodIdentity",
        ).role
        bucket_arn = f"arn:{self.partition}:s3:::{src.bucket}"
        prefix = f"{src.prefix}/" if src.prefix else ""
        policy = iam.Policy(
            self,
            f"{cid}WeightsPolicy",
            statements=[
                iam.PolicyStatement(actions=["s3:GetObject"], resources=[f"{bucket_arn}/{prefix}*"]),
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}} if prefix else None,
                ),
            ],
        )
        policy.attach_to_role(role)
        from ..constructs.serving_controllers import nag_partition
        from ..gates.nag import acknowledge

        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::arn:{nag_partition(self)}:s3:::{src.bucket}/{prefix}*]",
            "Read-only on the objects under the model's own S3 prefix: the weight files are not known at synth time.",
        )
