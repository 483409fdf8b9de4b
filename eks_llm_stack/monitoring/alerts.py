"""GPU and vLLM alert rules: one table, rendered to a PrometheusRule spec and to a rule file.

The table (:func:`alert_rules`) is the single definition. :func:`rule_groups` turns it into
Prometheus rule groups; :func:`prometheus_rule_spec` wraps them for the prometheus-operator
``PrometheusRule`` and :func:`rule_file` writes the plain YAML that ``promtool check rules``
and ``promtool test rules`` read, so what is tested is byte-for-byte what is deployed.

Every rule carries ``for:``, a ``severity`` label, a ``summary``, a ``description`` and a
``runbook`` annotation saying what to do. Annotations use ``$labels`` only, never
``$value``, so a notification is stable and the promtool tests can state it exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from ..config.observability import AlertThresholds
from . import metrics as m

Severity = Literal["info", "warning", "critical"]

#: Labels a vLLM alert is grouped by (one alert per model deployment).
_VLLM_BY = "namespace, model_name"


@dataclass(frozen=True, kw_only=True)
class AlertRule:
    """One alert. ``group`` is ``gpu``, ``vllm`` or ``targets``; ``for_`` a Prometheus duration."""

    name: str
    group: Literal["gpu", "vllm", "targets"]
    expr: str
    for_: str
    severity: Severity
    summary: str
    description: str
    runbook: str

    def to_rule(self) -> dict[str, Any]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            "labels": {"severity": self.severity},
            "annotations": {"summary": self.summary, "description": self.description, "runbook": self.runbook},
        }


def _num(x: float) -> str:
    """``80.0`` -> ``'80'``, ``0.05`` -> ``'0.05'``: thresholds as PromQL literals and in prose."""
    return f"{x:g}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:g} ms"


_GPU = "GPU {{ $labels.gpu }} on node {{ $labels.node }}"


def alert_rules(t: AlertThresholds | None = None) -> tuple[AlertRule, ...]:
    """The alert table, with thresholds from ``t`` (default: :class:`AlertThresholds` defaults)."""
    t = t or AlertThresholds()
    # Names of the pinned vLLM release only: no fallback to older names, which it does not export.
    kv = "vllm:kv_cache_usage_perc"
    itl = "vllm:inter_token_latency_seconds_bucket"
    rules = (
        AlertRule(
            name="GpuTemperatureHigh",
            group="gpu",
            expr=f"DCGM_FI_DEV_GPU_TEMP > {_num(t.gpu_temperature_warning_celsius)}",
            for_="5m",
            severity="warning",
            summary=f"{_GPU} is above {_num(t.gpu_temperature_warning_celsius)} °C",
            description="The GPU has run hot for 5 minutes; above its slowdown temperature it throttles its clocks.",
            runbook="Check the node's airflow and the instance's health in the EC2 console; if only this GPU is hot "
            "while its neighbours are not, cordon the node and let Karpenter replace it.",
        ),
        AlertRule(
            name="GpuTemperatureCritical",
            group="gpu",
            expr=f"DCGM_FI_DEV_GPU_TEMP > {_num(t.gpu_temperature_critical_celsius)}",
            for_="2m",
            severity="critical",
            summary=f"{_GPU} is above {_num(t.gpu_temperature_critical_celsius)} °C",
            description="The GPU is close to its shutdown temperature; expect heavy throttling or a hardware stop.",
            runbook="Cordon and drain the node now (kubectl drain --ignore-daemonsets); Karpenter brings up a "
            "replacement. Report the instance to AWS support if it recurs on new hardware.",
        ),
        AlertRule(
            name="GpuUtilizationSaturated",
            group="gpu",
            expr=f"DCGM_FI_DEV_GPU_UTIL > {_num(t.gpu_utilization_percent)}",
            for_="30m",
            severity="warning",
            summary=f"{_GPU} has been above {_num(t.gpu_utilization_percent)} % busy for 30 minutes",
            description="Sustained saturation: requests on this GPU queue up and latency grows.",
            runbook="Add replicas (raise the model's maxReplicas or the queue-depth target) or move the model to a "
            "larger GPU; check the vLLM dashboard for the queue and the TTFT trend.",
        ),
        AlertRule(
            name="GpuFramebufferFull",
            group="gpu",
            expr="DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)"
            f" > {_num(t.framebuffer_used_ratio)}",
            for_="10m",
            severity="warning",
            summary=f"{_GPU} has used more than {_num(t.framebuffer_used_ratio * 100)} % of its memory",
            description="GPU memory is nearly exhausted (FB_USED / (FB_USED + FB_FREE)); the next allocation may fail "
            "with CUDA out-of-memory.",
            runbook="vLLM reserves --gpu-memory-utilization (0.9 by default) of the GPU: lower it if another process "
            "shares the GPU, or lower --max-model-len / --max-num-seqs; otherwise use a GPU with more memory.",
        ),
        AlertRule(
            name="GpuClockThrottled",
            group="gpu",
            expr=(
                f"DCGM_FI_DEV_SM_CLOCK < {_num(t.sm_clock_ratio)} * DCGM_FI_DEV_MAX_SM_CLOCK"
                f" and DCGM_FI_DEV_GPU_UTIL > {_num(t.busy_utilization_percent)}"
            ),
            for_="10m",
            severity="warning",
            summary=f"{_GPU} runs below {_num(t.sm_clock_ratio * 100)} % of its maximum SM clock while busy",
            description="The SM clock stays below its baseline while the GPU is busy: thermal or power throttling.",
            runbook="Look at the GPU fleet dashboard: if temperature is high, treat it as GpuTemperatureHigh; if power "
            "is at the limit, the GPU is power-capped (expected on some instance types). Replace the node if "
            "DCGM_FI_DEV_THERMAL_VIOLATION keeps growing.",
        ),
        AlertRule(
            name="GpuPowerNearLimit",
            group="gpu",
            expr=f"DCGM_FI_DEV_POWER_USAGE > {_num(t.power_limit_ratio)} * DCGM_FI_DEV_POWER_MGMT_LIMIT",
            for_="15m",
            severity="warning",
            summary=f"{_GPU} draws more than {_num(t.power_limit_ratio * 100)} % of its power limit",
            description="The GPU has run at its power limit for 15 minutes; its clocks are being capped.",
            runbook="Usually a sign of sustained full load: spread it over more replicas. If the power limit was "
            "lowered (nvidia-smi -pl), restore the default limit in the node's bootstrap.",
        ),
        AlertRule(
            name="GpuXidError",
            group="gpu",
            expr="DCGM_FI_DEV_XID_ERRORS > 0 and changes(DCGM_FI_DEV_XID_ERRORS[10m]) > 0",
            for_="0m",
            severity="critical",
            summary=f"{_GPU} reported a new XID error",
            description="The driver reported a GPU error (the series value is the XID code). XID 48, 63, 64, 74, 79, "
            "92-95 are hardware faults; 13, 31 and 43 are usually the application.",
            runbook="Read the XID code from DCGM_FI_DEV_XID_ERRORS and the node's kernel log. For a hardware XID, "
            "cordon and drain the node so Karpenter replaces it; for 13/31/43 restart the pod and check the model "
            "server logs.",
        ),
        AlertRule(
            name="VllmKvCacheFull",
            group="vllm",
            expr=f"max by ({_VLLM_BY}) ({kv}) > {_num(t.kv_cache_usage_ratio)}",
            for_="5m",
            severity="warning",
            summary=f"vLLM model {{{{ $labels.model_name }}}} in {{{{ $labels.namespace }}}} has its KV cache above "
            f"{_num(t.kv_cache_usage_ratio * 100)} %",
            description=f"When the KV cache is full new requests wait and running ones are preempted (metric {kv}).",
            runbook="Lower --max-num-seqs or --max-model-len, enable chunked prefill (--enable-chunked-prefill), add "
            "replicas, or move the model to a GPU with more memory.",
        ),
        AlertRule(
            name="VllmRequestsQueued",
            group="vllm",
            expr=f"sum by ({_VLLM_BY}) (vllm:num_requests_waiting) > {t.requests_waiting}",
            for_="5m",
            severity="warning",
            summary=f"vLLM model {{{{ $labels.model_name }}}} in {{{{ $labels.namespace }}}} has more than "
            f"{t.requests_waiting} requests waiting",
            description="Requests are queueing faster than the replicas serve them; TTFT grows with the queue.",
            runbook="Check that the autoscaler is adding replicas and that GPU nodes can be provisioned (Karpenter "
            "events, instance quotas); if the KV cache is also full, apply the VllmKvCacheFull remedies.",
        ),
        AlertRule(
            name="VllmTimeToFirstTokenHigh",
            group="vllm",
            expr=(
                f"histogram_quantile(0.95, sum by ({_VLLM_BY}, le) (rate(vllm:time_to_first_token_seconds_bucket[5m])))"
                f" > {_num(t.ttft_p95_seconds)}"
            ),
            for_="10m",
            severity="warning",
            summary=f"vLLM model {{{{ $labels.model_name }}}} in {{{{ $labels.namespace }}}} has p95 TTFT above "
            f"{_ms(t.ttft_p95_seconds)}",
            description="The interactive SLO (p95 time to first token) is breached.",
            runbook="TTFT grows with the queue and with prompt length: add replicas, enable chunked prefill and prefix "
            "caching, or cap --max-model-len; see the queue-depth and KV-cache panels.",
        ),
        AlertRule(
            name="VllmInterTokenLatencyHigh",
            group="vllm",
            expr=(f"histogram_quantile(0.95, sum by ({_VLLM_BY}, le) (rate({itl}[5m]))) > {_num(t.itl_p95_seconds)}"),
            for_="10m",
            severity="warning",
            summary=f"vLLM model {{{{ $labels.model_name }}}} in {{{{ $labels.namespace }}}} has p95 inter-token "
            f"latency above {_ms(t.itl_p95_seconds)}",
            description=f"The streaming SLO is breached ({itl.removesuffix('_bucket')}).",
            runbook="Decode slows when the batch is large: lower --max-num-seqs, add replicas, or use more tensor "
            "parallelism / a faster GPU for this model.",
        ),
        AlertRule(
            name="VllmPreemptions",
            group="vllm",
            expr=f"sum by ({_VLLM_BY}) (rate(vllm:num_preemptions_total[5m])) > 0",
            for_="10m",
            severity="warning",
            summary="vLLM model {{ $labels.model_name }} in {{ $labels.namespace }} keeps preempting requests",
            description="Running requests are evicted from the KV cache and recomputed, which wastes GPU time.",
            runbook="The KV cache is too small for the load: apply the VllmKvCacheFull remedies (lower --max-num-seqs, "
            "add replicas, larger GPU).",
        ),
        AlertRule(
            name="ScrapeTargetDown",
            group="targets",
            expr=f'up{{{m.COMPONENT_LABEL}!=""}} == 0',
            for_="5m",
            severity="warning",
            summary=f"{{{{ $labels.{m.COMPONENT_LABEL} }}}} target {{{{ $labels.namespace }}}}/{{{{ $labels.pod }}}} "
            "is down",
            description="Prometheus cannot scrape this target; its GPU or model metrics, and the alerts built on "
            "them, are blind.",
            runbook="kubectl -n <namespace> describe pod <pod>: a crash-looping DCGM exporter usually means the NVIDIA "
            "driver is not ready on the node; a vLLM pod that is not ready is still loading its model.",
        ),
    )
    return rules


_GROUP_NAMES = {"gpu": "eks-llm-stack.gpu", "vllm": "eks-llm-stack.vllm", "targets": "eks-llm-stack.targets"}


def rule_groups(rules: Iterable[AlertRule] | None = None) -> list[dict[str, Any]]:
    """Prometheus rule groups, one per :attr:`AlertRule.group`, in table order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for rule in alert_rules() if rules is None else rules:
        groups.setdefault(rule.group, []).append(rule.to_rule())
    return [{"name": _GROUP_NAMES[g], "rules": rs} for g, rs in groups.items()]


def prometheus_rule_spec(rules: Iterable[AlertRule] | None = None) -> dict[str, Any]:
    """The ``spec`` of a ``monitoring.coreos.com/v1`` ``PrometheusRule``."""
    return {"groups": rule_groups(rules)}


def rule_file(rules: Iterable[AlertRule] | None = None) -> str:
    """The same groups as a plain Prometheus rule file (what ``promtool check rules`` reads)."""
    return yaml.safe_dump({"groups": rule_groups(rules)}, sort_keys=False, allow_unicode=True, width=1000)


def rule_metric_names(rules: Iterable[AlertRule] | None = None) -> dict[str, set[str]]:
    """``alert name -> metric names its expression selects``."""
    return {r.name: m.promql_metric_names(r.expr) for r in (alert_rules() if rules is None else rules)}
