"""Monitoring objects of the platform: vLLM scrape monitors, the alert rules, dashboard ConfigMaps.

* :class:`VllmPodMonitor` / :class:`VllmServiceMonitor` — scrape vLLM pods selected by label;
  the serving chart can add one of its own, :class:`MonitoringChart` adds a fleet-wide one.
* a ``PrometheusRule`` rendered from the alert table in :mod:`eks_llm_stack.alerts`;
* one ``ConfigMap`` per dashboard of :mod:`eks_llm_stack.dashboards`, labelled for the
  Grafana sidecar (``grafana_dashboard: "1"``).

The kube-prometheus-stack installed by :class:`~eks_llm_stack.constructs.observability.Observability`
selects every ServiceMonitor, PodMonitor and PrometheusRule in every namespace, so these are
picked up wherever they are applied.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cdk8s
from constructs import Construct

from ..config.observability import AlertThresholds, duration_seconds
from ..conventions import MANAGED_BY, VLLM_PORT_NAME
from ..errors import Problems, collecting
from ..monitoring import alerts, dashboards
from ..monitoring import metrics as m
from ..naming import LABEL_KEY_FIX, LABEL_VALUE_FIX, check_dns_label, is_label_key, is_label_value
from .kube import api_object

MONITORING_API = "monitoring.coreos.com/v1"
#: Label (and value) the Grafana dashboard sidecar looks for; the Helm values set the same.
DASHBOARD_LABEL = "grafana_dashboard"
DASHBOARD_LABEL_VALUE = "1"
#: Labels vLLM pods carry by default (the serving chart's ``app.kubernetes.io/name``).
DEFAULT_VLLM_POD_LABELS: Mapping[str, str] = {"app.kubernetes.io/name": "vllm"}

_DURATION = re.compile(r"^\d+(ms|s|m|h)$")


def component_relabeling(component: str) -> dict[str, Any]:
    """Relabeling that marks every target of a monitor as ours (see :data:`metrics.COMPONENT_LABEL`)."""
    return {"action": "replace", "targetLabel": m.COMPONENT_LABEL, "replacement": component}


def check_labels(p: Problems, field_name: str, labels: Mapping[str, str]) -> None:
    for key, value in labels.items():
        p.check(is_label_key(key), f"{field_name}[{key!r}]", key, "is not a valid label key", LABEL_KEY_FIX)
        p.check(is_label_value(value), f"{field_name}[{key!r}]", value, "is not a valid label value", LABEL_VALUE_FIX)


def check_interval(p: Problems, field_name: str, value: str) -> None:
    p.check(
        bool(_DURATION.match(value)) and duration_seconds(value) > 0,
        field_name,
        value,
        "is not a scrape interval",
        "write a duration such as 15s, 30s or 1m",
    )


@dataclass(frozen=True, kw_only=True)
class VllmMonitorProps:
    """What a vLLM scrape monitor selects.

    ``name`` / ``namespace`` — of the monitor object (required). ``pod_labels`` — labels of the vLLM
    pods (or of their Service, for :class:`VllmServiceMonitor`) (default ``app.kubernetes.io/name: vllm``).
    ``namespaces`` — where to look (default: every namespace). ``port`` — name of the container
    (or Service) port serving ``/metrics`` (default ``http``, vLLM's OpenAI server port).
    ``interval`` — scrape interval (default ``15s``). ``labels`` — extra labels on the monitor (default none).
    """

    name: str
    namespace: str
    pod_labels: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_VLLM_POD_LABELS))
    namespaces: tuple[str, ...] = ()
    port: str = VLLM_PORT_NAME
    interval: str = "15s"
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        with collecting("VllmMonitorProps") as p:
            check_dns_label(p, "name", self.name)
            check_dns_label(p, "namespace", self.namespace)
            for i, ns in enumerate(self.namespaces):
                check_dns_label(p, f"namespaces[{i}]", ns)
            p.check(
                bool(self.pod_labels),
                "pod_labels",
                dict(self.pod_labels),
                "is empty",
                "give the labels of the vLLM pods, e.g. {'app.kubernetes.io/name': 'vllm'}",
            )
            check_labels(p, "pod_labels", self.pod_labels)
            check_labels(p, "labels", self.labels)
            p.check(
                bool(re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?", self.port)),
                "port",
                self.port,
                "is not a port name",
                "use the name of the port (at most 15 lowercase letters, digits, '-')",
            )
            check_interval(p, "interval", self.interval)

    def _namespace_selector(self) -> dict[str, Any]:
        return {"matchNames": list(self.namespaces)} if self.namespaces else {"any": True}

    def _endpoint(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "path": "/metrics",
            "interval": self.interval,
            "relabelings": [component_relabeling(m.VLLM_COMPONENT)],
        }


def _vllm_monitor(scope: Construct, props: VllmMonitorProps, kind: str, endpoints_key: str) -> cdk8s.ApiObject:
    """The PodMonitor or ServiceMonitor of :class:`VllmPodMonitor` / :class:`VllmServiceMonitor` (same shape)."""
    return api_object(
        scope,
        "Resource",
        api_version=MONITORING_API,
        kind=kind,
        metadata=cdk8s.ApiObjectMetadata(
            name=props.name, namespace=props.namespace, labels={**MANAGED_BY, **props.labels}
        ),
        body={
            "spec": {
                "selector": {"matchLabels": dict(props.pod_labels)},
                "namespaceSelector": props._namespace_selector(),
                endpoints_key: [props._endpoint()],
            }
        },
    )


class VllmPodMonitor(Construct):
    """A ``PodMonitor`` scraping ``/metrics`` of every vLLM pod matching ``props.pod_labels``."""

    def __init__(self, scope: Construct, id: str, *, props: VllmMonitorProps) -> None:
        super().__init__(scope, id)
        self.api_object = _vllm_monitor(self, props, "PodMonitor", "podMetricsEndpoints")


class VllmServiceMonitor(Construct):
    """A ``ServiceMonitor`` for vLLM behind a Service whose labels match ``props.pod_labels``."""

    def __init__(self, scope: Construct, id: str, *, props: VllmMonitorProps) -> None:
        super().__init__(scope, id)
        self.api_object = _vllm_monitor(self, props, "ServiceMonitor", "endpoints")


@dataclass(frozen=True, kw_only=True)
class MonitoringChartProps:
    """The platform's rules, dashboards and fleet-wide vLLM monitor.

    ``namespace`` — where the objects go; must be the Grafana sidecar's namespace for the
    dashboards (default ``monitoring``). ``thresholds`` — alert thresholds (default: REFERENCE values).
    ``rule_name`` — name of the PrometheusRule (default ``eks-llm-stack-alerts``). ``dashboards`` —
    ship dashboard ConfigMaps (default on; off when Amazon Managed Grafana shows them instead).
    ``vllm_pod_labels`` / ``vllm_port`` — how vLLM pods are found (default ``app.kubernetes.io/name: vllm``,
    port ``http``); ``vllm_monitor`` — add the fleet-wide PodMonitor (default on).
    """

    namespace: str = "monitoring"
    thresholds: AlertThresholds = field(default_factory=AlertThresholds)
    rule_name: str = "eks-llm-stack-alerts"
    dashboards: bool = True
    vllm_monitor: bool = True
    vllm_pod_labels: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_VLLM_POD_LABELS))
    vllm_port: str = VLLM_PORT_NAME

    def __post_init__(self) -> None:
        with collecting("MonitoringChartProps") as p:
            check_dns_label(p, "namespace", self.namespace)
            check_dns_label(p, "rule_name", self.rule_name)
            check_labels(p, "vllm_pod_labels", self.vllm_pod_labels)


class MonitoringChart(cdk8s.Chart):
    """The PrometheusRule, the dashboard ConfigMaps and a PodMonitor for every vLLM pod."""

    def __init__(self, scope: Construct, id: str, *, props: MonitoringChartProps | None = None) -> None:
        super().__init__(scope, id, disable_resource_name_hashes=True)
        props = props or MonitoringChartProps()
        self.props = props
        self.rule = api_object(
            self,
            "Rules",
            api_version=MONITORING_API,
            kind="PrometheusRule",
            metadata=cdk8s.ApiObjectMetadata(name=props.rule_name, namespace=props.namespace, labels=dict(MANAGED_BY)),
            body={"spec": alerts.prometheus_rule_spec(alerts.alert_rules(props.thresholds))},
        )
        self.dashboard_config_maps: list[cdk8s.ApiObject] = []
        if props.dashboards:
            for file_name, dash in dashboards.all_dashboards().items():
                stem = file_name.removesuffix(".json")
                self.dashboard_config_maps.append(
                    api_object(
                        self,
                        f"Dashboard-{stem}",
                        api_version="v1",
                        kind="ConfigMap",
                        metadata=cdk8s.ApiObjectMetadata(
                            name=f"dashboard-{stem}",
                            namespace=props.namespace,
                            labels={**MANAGED_BY, DASHBOARD_LABEL: DASHBOARD_LABEL_VALUE},
                            # The sidecar files dashboards into this Grafana folder.
                            annotations={"grafana_folder": "eks-llm-stack"},
                        ),
                        body={"data": {file_name: dashboards.dashboard_json(dash)}},
                    )
                )
        self.vllm_monitor: VllmPodMonitor | None = None
        if props.vllm_monitor:
            self.vllm_monitor = VllmPodMonitor(
                self,
                "Vllm",
                props=VllmMonitorProps(
                    name="vllm", namespace=props.namespace, pod_labels=props.vllm_pod_labels, port=props.vllm_port
                ),
            )
