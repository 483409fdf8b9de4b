"""KEDA ``ScaledObject`` for a served model: replicas follow vLLM's queue depth and KV-cache use.

Two Prometheus triggers, both ``AverageValue`` (the query returns a sum over the model's pods;
the HPA divides it by the replica count and adds replicas until the average meets the target):

* ``vllm:num_requests_waiting`` — requests the engine has accepted but not yet scheduled. A
  queue means the replicas are saturated;
* ``vllm:kv_cache_usage_perc`` — near 1, new requests preempt running ones (REFERENCE, "vLLM
  metrics"), so scale before the cache is full.

Scaling down is slow on purpose (a stabilization window and one replica at a time): a GPU
replica takes minutes to come back. With ``scale_to_zero`` the model goes to zero replicas
after ``idle_minutes`` without a request (KEDA's ``idleReplicaCount``); vLLM's metrics vanish
with its last pod, so nothing wakes it but a new deployment or the ``paused-replicas``
annotation (docs/serving.md, "Scale to zero").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from constructs import Construct

from ..conventions import MANAGED_BY
from ..errors import collecting
from ..naming import check_dns_label
from .kube import named_object

KEDA_API = "keda.sh/v1alpha1"
#: The Prometheus of kube-prometheus-stack (release ``kube-prometheus-stack``, namespace ``monitoring``).
DEFAULT_PROMETHEUS_URL = "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
WAITING_METRIC = "vllm:num_requests_waiting"
KV_CACHE_METRIC = "vllm:kv_cache_usage_perc"
#: Counter whose rate shows the model is in use (scale to zero only).
ACTIVITY_METRIC = "vllm:request_success_total"
_URL = re.compile(r"^https?://[\w.-]+(:\d+)?(/[\w./-]*)?$")


@dataclass(frozen=True, kw_only=True)
class ModelAutoscalerProps:
    """Autoscaling of one model.

    ``name`` / ``namespace`` — of the ScaledObject (required; use the model name).
    ``model_name`` — the served model name, vLLM's ``model_name`` metric label (required).
    ``target_kind`` / ``target_api_version`` / ``target_name`` — the workload (required: a
    Deployment or a LeaderWorkerSet). ``min_replicas`` (default 1) / ``max_replicas`` (required).
    ``scale_to_zero`` — go to zero replicas when idle (default False). ``idle_minutes`` —
    window without requests before that (default 30). ``waiting_per_replica`` — queue target
    (default 4). ``kv_cache_target`` — KV-cache use target, 0-1 (default 0.8).
    ``polling_seconds`` — default 15. ``scale_down_seconds`` — stabilization window before
    removing a replica (default 600). ``prometheus_url`` — default :data:`DEFAULT_PROMETHEUS_URL`.
    ``labels`` — extra labels (default none).
    """

    name: str
    namespace: str
    model_name: str
    target_kind: str
    target_api_version: str
    target_name: str
    max_replicas: int
    min_replicas: int = 1
    scale_to_zero: bool = False
    idle_minutes: int = 30
    waiting_per_replica: float = 4.0
    kv_cache_target: float = 0.8
    polling_seconds: int = 15
    scale_down_seconds: int = 600
    prometheus_url: str = DEFAULT_PROMETHEUS_URL
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        with collecting(f"ModelAutoscalerProps '{self.name}'") as p:
            check_dns_label(p, "name", self.name)
            check_dns_label(p, "namespace", self.namespace)
            check_dns_label(p, "target_name", self.target_name)
            p.check(
                (self.target_api_version, self.target_kind)
                in (("apps/v1", "Deployment"), ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet")),
                "target_kind",
                (self.target_api_version, self.target_kind),
                "is not a workload this scaler supports",
                "target an apps/v1 Deployment or a leaderworkerset.x-k8s.io/v1 LeaderWorkerSet",
            )
            p.check(
                self.max_replicas >= 1,
                "max_replicas",
                self.max_replicas,
                "must be at least 1",
                "allow 1 or more replicas",
            )
            p.check(self.min_replicas >= 0, "min_replicas", self.min_replicas, "must not be negative", "use 0 or more")
            p.check(
                self.min_replicas <= self.max_replicas,
                "min_replicas",
                self.min_replicas,
                f"is greater than max_replicas ({self.max_replicas})",
                f"lower it to at most {self.max_replicas}, or raise max_replicas",
            )
            p.check(
                self.min_replicas >= 1 or self.scale_to_zero,
                "min_replicas",
                self.min_replicas,
                "is 0 without scale_to_zero",
                "set scale_to_zero=True, or min_replicas=1",
            )
            p.check(
                self.waiting_per_replica > 0,
                "waiting_per_replica",
                self.waiting_per_replica,
                "must be positive",
                "use e.g. 4",
            )
            p.check(
                0 < self.kv_cache_target <= 1,
                "kv_cache_target",
                self.kv_cache_target,
                "is outside (0, 1]",
                "use e.g. 0.8",
            )
            p.check(
                5 <= self.polling_seconds <= 300, "polling_seconds", self.polling_seconds, "is outside 5-300", "use 15"
            )
            p.check(self.idle_minutes >= 1, "idle_minutes", self.idle_minutes, "must be at least 1", "use e.g. 30")
            p.check(
                0 <= self.scale_down_seconds <= 3600,
                "scale_down_seconds",
                self.scale_down_seconds,
                "is outside 0-3600",
                "use 600",
            )
            p.check(
                bool(_URL.match(self.prometheus_url)),
                "prometheus_url",
                self.prometheus_url,
                "is not an http(s) URL",
                f"use e.g. {DEFAULT_PROMETHEUS_URL}",
            )

    @property
    def selector(self) -> str:
        """The PromQL label matcher of this model's series."""
        return f'{{namespace="{self.namespace}",model_name="{self.model_name}"}}'

    def queries(self) -> dict[str, str]:
        """Trigger name -> PromQL (every metric is one vLLM exports; tests check the names)."""
        out = {
            "queue": f"sum({WAITING_METRIC}{self.selector})",
            "kv-cache": f"sum({KV_CACHE_METRIC}{self.selector})",
        }
        if self.scale_to_zero:
            out["activity"] = f"sum(increase({ACTIVITY_METRIC}{self.selector}[{self.idle_minutes}m]))"
        return out


class ModelAutoscaler(Construct):
    """The ``ScaledObject`` (``.scaled_object``) of one model."""

    def __init__(self, scope: Construct, id: str, *, props: ModelAutoscalerProps) -> None:
        super().__init__(scope, id)
        self.props = props
        p = props
        q = p.queries()
        triggers: list[dict[str, Any]] = [
            self._trigger("queue", q["queue"], threshold=p.waiting_per_replica),
            self._trigger("kv-cache", q["kv-cache"], threshold=p.kv_cache_target),
        ]
        if p.scale_to_zero:
            # Active while any request finished within the idle window; at zero replicas KEDA
            # keeps the model at idleReplicaCount until this turns active again.
            triggers.append(self._trigger("activity", q["activity"], threshold=1_000_000, activation=0))
        spec: dict[str, Any] = {
            "scaleTargetRef": {"apiVersion": p.target_api_version, "kind": p.target_kind, "name": p.target_name},
            # KEDA needs minReplicaCount >= 1 next to idleReplicaCount 0.
            "minReplicaCount": max(p.min_replicas, 1) if p.scale_to_zero else p.min_replicas,
            "maxReplicaCount": p.max_replicas,
            "pollingInterval": p.polling_seconds,
            "cooldownPeriod": p.idle_minutes * 60,
            # Prometheus unreachable: keep what runs rather than scaling a loaded model down.
            "fallback": {
                "failureThreshold": 3,
                "replicas": max(p.min_replicas, 1),
                "behavior": "currentReplicasIfHigher",
            },
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {
                        "scaleUp": {
                            "stabilizationWindowSeconds": 0,
                            "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}],
                        },
                        "scaleDown": {
                            "stabilizationWindowSeconds": p.scale_down_seconds,
                            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}],
                        },
                    }
                }
            },
            "triggers": triggers,
        }
        if p.scale_to_zero:
            spec["idleReplicaCount"] = 0
        labels = {**dict(p.labels), **MANAGED_BY, "app.kubernetes.io/instance": p.model_name}
        self.scaled_object = named_object(
            self, "ScaledObject", KEDA_API, "ScaledObject", p.name, p.namespace, labels, {"spec": spec}
        )

    def _trigger(self, name: str, query: str, *, threshold: float, activation: float | None = None) -> dict[str, Any]:
        metadata = {
            "serverAddress": self.props.prometheus_url,
            "query": query,
            "threshold": _number(threshold),
            # No series (no pod yet, or scaled to zero) counts as 0, not as a scaler error.
            "ignoreNullValues": "true",
        }
        if activation is not None:
            metadata["activationThreshold"] = _number(activation)
        return {"type": "prometheus", "name": name, "metricType": "AverageValue", "metadata": metadata}


def _number(value: float) -> str:
    """A KEDA threshold string without an exponent ('4', '0.8', '1000000')."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
