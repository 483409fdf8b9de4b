"""Every model of a profile resolved into what it becomes: sizing plan, pools, weights source, chart props.

Cross-section rules (pools x storage x sizing) are decided here, once, and read by the Serving
stack, ``profile validate`` and ops alike.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from ..catalog import get_instance
from ..charts.autoscaling import DEFAULT_PROMETHEUS_URL, ModelAutoscalerProps
from ..charts.network_policies import ModelNetworkPolicyProps
from ..charts.prepull import ImagePrepullProps
from ..charts.storage import ModelFetch
from ..charts.vllm import PORT, ModelIngress, VllmModelProps, WeightsFromClaim, WeightsFromHub, WeightsFromS3
from ..config import Profile
from ..config.data import kubernetes_secret_name
from ..config.gpu_pool import GpuNodePoolProps
from ..config.serving import SPOT_NOTICE_SECONDS, ModelConfig, ModelSource, duplicate_names
from ..constructs.model_secrets import api_key_kubernetes_secret as kubernetes_api_key_secret
from ..conventions import CACHE_CLAIMS, HF_TOKEN_SECRET
from ..errors import ConfigError, Problems
from ..sizing import Plan, SizingRequest, size


def api_key_models(profile: Profile) -> tuple[str, ...]:
    """The models that get a generated API key: vLLM models with ``api_key`` (the simulator takes none),
    when the profile syncs secrets."""
    if not profile.secrets.enabled:
        return ()
    return tuple(m.name for m in profile.models if m.engine == "vllm" and m.api_key)


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


def plan_models(profile: Profile, pools: tuple[GpuNodePoolProps, ...] | None = None) -> tuple[ModelDeployment, ...]:
    """Size and place every model of ``profile``; ``ConfigError`` listing every problem of every model.

    Cross-section rules live here because they need the compute pools, the storage section and
    the sizing engine: a model that fits none of its pool's instances, TP larger than the GPUs
    per node, a multi-node model on a pool without EFA or a placement group, a grace period
    beyond the spot notice, a cache the profile does not have, duplicate names. ``pools``: the
    profile's pool props when the caller has them already (they are built and checked once).
    """
    if pools is None:
        pools = tuple(profile.compute.pool_props())

    p = Problems(f"profile '{profile.name}' models")
    dupes = duplicate_names(profile.models)
    if dupes:
        p.add(
            "models",
            f"model names {dupes} are used more than once (each names a Deployment and a Service)",
            "give every model a different name",
            dupes,
        )
    out = [
        d for i, m in enumerate(profile.models) if (d := _plan_one(profile, pools, m, f"models[{i}]", p)) is not None
    ]
    p.raise_if_any()
    return tuple(out)


def _choose_pools(
    all_pools: tuple[GpuNodePoolProps, ...], m: ModelConfig, where: str, p: Any
) -> tuple[GpuNodePoolProps, ...]:
    """The pools a model may run on: those named, else every pool of the right workload."""
    pools = list(all_pools)
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


def _plan_one(
    profile: Profile, all_pools: tuple[GpuNodePoolProps, ...], m: ModelConfig, where: str, p: Any
) -> ModelDeployment | None:

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

    pools = _choose_pools(all_pools, m, where, p)
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
                hf_token_secret=hf_secret or HF_TOKEN_SECRET,
                service_account=m.name,
                # On the model's GPU pools: their nodes carry the storage-client security group.
                pools=tuple(x.name for x in pools),
            )
            weights = WeightsFromClaim(claim_name=CACHE_CLAIMS[cache], path=target, wait_for_fetch=True)
    if len(p.problems) > problems_before:
        return None
    inst = plan.instance_type

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
