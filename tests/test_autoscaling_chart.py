"""KEDA ScaledObjects and the image pre-pull DaemonSet for served models."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import cdk8s
import pytest

from eks_llm_stack import versions
from eks_llm_stack.charts.autoscaling import DEFAULT_PROMETHEUS_URL, ModelAutoscaler, ModelAutoscalerProps
from eks_llm_stack.charts.prepull import ImagePrepull, ImagePrepullProps
from eks_llm_stack.conventions import GPU_RESOURCE, GPU_TAINT_KEY, POOL_LABEL
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.gates.manifests import validate_manifests
from eks_llm_stack.monitoring import metrics

PROPS = ModelAutoscalerProps(
    name="llama",
    namespace="llm-serving",
    model_name="llama",
    target_api_version="apps/v1",
    target_kind="Deployment",
    target_name="llama",
    min_replicas=1,
    max_replicas=4,
)


def render(props: ModelAutoscalerProps) -> dict[str, Any]:
    chart = cdk8s.Chart(cdk8s.App(), "c")
    ModelAutoscaler(chart, "a", props=props)
    (doc,) = chart.to_json()
    return doc


def test_scaled_object_validates_against_the_keda_crd() -> None:
    assert validate_manifests([render(PROPS)]) == []


def test_scale_to_zero_validates_against_the_keda_crd() -> None:
    assert validate_manifests([render(replace(PROPS, min_replicas=0, scale_to_zero=True))]) == []


def test_min_and_max_come_from_the_props() -> None:
    spec = render(PROPS)["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 4)
    assert "idleReplicaCount" not in spec


def test_targets_the_deployment() -> None:
    assert render(PROPS)["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llama"}


def test_a_multi_node_model_scales_its_leaderworkerset() -> None:
    props = replace(
        PROPS, target_api_version="leaderworkerset.x-k8s.io/v1", target_kind="LeaderWorkerSet", target_name="big-group"
    )
    assert render(props)["spec"]["scaleTargetRef"]["kind"] == "LeaderWorkerSet"


def test_triggers_on_queue_depth_and_kv_cache_per_replica() -> None:
    triggers = {t["name"]: t for t in render(PROPS)["spec"]["triggers"]}
    assert set(triggers) == {"queue", "kv-cache"}
    q, kv = triggers["queue"]["metadata"], triggers["kv-cache"]["metadata"]
    assert q["query"] == 'sum(vllm:num_requests_waiting{namespace="llm-serving",model_name="llama"})'
    assert q["threshold"] == "4"
    assert kv["query"] == 'sum(vllm:kv_cache_usage_perc{namespace="llm-serving",model_name="llama"})'
    assert kv["threshold"] == "0.8"
    assert all(t["metricType"] == "AverageValue" and t["type"] == "prometheus" for t in triggers.values())
    assert q["serverAddress"] == DEFAULT_PROMETHEUS_URL


def test_every_queried_metric_is_one_vllm_exports() -> None:
    props = replace(PROPS, min_replicas=0, scale_to_zero=True)
    names = {n for q in props.queries().values() for n in re.findall(r"vllm:[a-z_]+", q)}
    assert names and names <= metrics.vllm_series()


def test_scale_down_is_slow_and_one_replica_at_a_time() -> None:
    behavior = render(PROPS)["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert behavior["stabilizationWindowSeconds"] == 600
    assert behavior["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 300}]


def test_scale_to_zero_idles_at_zero_with_an_activity_trigger() -> None:
    spec = render(replace(PROPS, min_replicas=0, scale_to_zero=True, idle_minutes=20))["spec"]
    assert spec["idleReplicaCount"] == 0
    assert spec["minReplicaCount"] == 1
    assert spec["cooldownPeriod"] == 1200
    activity = next(t for t in spec["triggers"] if t["name"] == "activity")["metadata"]
    assert "[20m]" in activity["query"]
    assert activity["activationThreshold"] == "0"


def test_min_above_max_is_refused_with_the_fix() -> None:
    with pytest.raises(
        ConfigError, match=r"min_replicas: is greater than max_replicas \(2\).*\n.*fix: lower it to at most 2"
    ):
        replace(PROPS, min_replicas=3, max_replicas=2)


def test_zero_min_without_scale_to_zero_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"min_replicas: is 0 without scale_to_zero.*\n.*fix: set scale_to_zero=True"):
        replace(PROPS, min_replicas=0)


def test_unsupported_target_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"target_kind: is not a workload this scaler supports"):
        replace(PROPS, target_kind="StatefulSet")


# -- pre-pull -----------------------------------------------------------------------------------

PREPULL = ImagePrepullProps(
    name="prepull-llama", namespace="llm-serving", images=(versions.VLLM_IMAGE.uri,), pools=("inference-spot",)
)


def render_prepull(props: ImagePrepullProps) -> dict[str, Any]:
    chart = cdk8s.Chart(cdk8s.App(), "c")
    ImagePrepull(chart, "p", props=props)
    (doc,) = chart.to_json()
    return doc


def test_prepull_daemonset_validates() -> None:
    assert validate_manifests([render_prepull(PREPULL)]) == []


def test_prepull_pulls_the_image_on_the_pool_without_taking_a_gpu() -> None:
    spec = render_prepull(PREPULL)["spec"]["template"]["spec"]
    assert spec["initContainers"][0]["image"] == versions.VLLM_IMAGE.uri
    assert {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    exprs = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0][
        "matchExpressions"
    ]
    assert {"key": POOL_LABEL, "operator": "In", "values": ["inference-spot"]} in exprs
    for c in (*spec["initContainers"], *spec["containers"]):
        assert GPU_RESOURCE not in c["resources"].get("limits", {})


def test_prepull_refuses_an_untagged_image() -> None:
    with pytest.raises(
        ConfigError, match=r"images: an image without a tag would pull :latest.*\n.*fix: give each image its tag"
    ):
        replace(PREPULL, images=("vllm/vllm-openai",))
