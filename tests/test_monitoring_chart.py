"""The monitoring chart: PrometheusRule from the alert table, dashboard ConfigMaps, vLLM monitors."""

from __future__ import annotations

import json

import cdk8s
import pytest

from eks_llm_stack.charts.monitoring import (
    DASHBOARD_LABEL,
    MonitoringChart,
    MonitoringChartProps,
    VllmMonitorProps,
    VllmServiceMonitor,
)
from eks_llm_stack.charts.render import chart_documents
from eks_llm_stack.config.observability import AlertThresholds
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.gates.manifests import validate_manifests
from eks_llm_stack.monitoring import alerts, dashboards, metrics


def render(props: MonitoringChartProps | None = None) -> list[dict]:
    return chart_documents(MonitoringChart(cdk8s.App(), "monitoring", props=props))


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    return render()


def of_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def test_manifests_validate_against_prometheus_operator_v0_93_crds(docs):
    assert {d["kind"] for d in docs} == {"PrometheusRule", "ConfigMap", "PodMonitor"}
    assert validate_manifests(docs) == []


def test_schema_errors_in_a_monitor_are_caught(docs):
    pod_monitor = json.loads(json.dumps(of_kind(docs, "PodMonitor")[0]))
    pod_monitor["spec"]["podMetricsEndpoints"][0]["intervall"] = "15s"
    problems = validate_manifests([pod_monitor])
    assert len(problems) == 1 and "intervall" in problems[0]


def test_prometheus_rule_is_the_alert_table(docs):
    (rule,) = of_kind(docs, "PrometheusRule")
    assert rule["spec"] == alerts.prometheus_rule_spec()
    names = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert names == [r.name for r in alerts.alert_rules()]


def test_thresholds_reach_the_prometheus_rule():
    (rule,) = of_kind(
        render(MonitoringChartProps(thresholds=AlertThresholds(kv_cache_usage_ratio=0.8))), "PrometheusRule"
    )
    kv = next(r for g in rule["spec"]["groups"] for r in g["rules"] if r["alert"] == "VllmKvCacheFull")
    assert kv["expr"].endswith("> 0.8")


def test_dashboards_ship_as_sidecar_config_maps(docs):
    maps = of_kind(docs, "ConfigMap")
    assert all(cm["metadata"]["labels"][DASHBOARD_LABEL] == "1" for cm in maps)
    shipped = {name: json.loads(text) for cm in maps for name, text in cm["data"].items()}
    assert shipped == json.loads(json.dumps(dashboards.all_dashboards()))


def test_dashboard_config_maps_fit_kubectl_apply(docs):
    # kubectl apply keeps the object in an annotation limited to 256 KiB.
    for cm in of_kind(docs, "ConfigMap"):
        assert len(json.dumps(cm)) < 256 * 1024


def test_dashboards_can_be_left_out():
    assert of_kind(render(MonitoringChartProps(dashboards=False)), "ConfigMap") == []


def test_pod_monitor_selects_vllm_pods_in_every_namespace(docs):
    (pm,) = of_kind(docs, "PodMonitor")
    assert pm["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "vllm"}}
    assert pm["spec"]["namespaceSelector"] == {"any": True}
    endpoint = pm["spec"]["podMetricsEndpoints"][0]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    assert endpoint["relabelings"] == [
        {"action": "replace", "targetLabel": metrics.COMPONENT_LABEL, "replacement": metrics.VLLM_COMPONENT}
    ]


def test_namespace_comes_from_props():
    assert {d["metadata"]["namespace"] for d in render(MonitoringChartProps(namespace="obs"))} == {"obs"}


def test_serving_chart_can_add_a_service_monitor():
    chart = cdk8s.Chart(cdk8s.App(), "serving")
    VllmServiceMonitor(
        chart,
        "Llama",
        props=VllmMonitorProps(
            name="llama",
            namespace="serving",
            pod_labels={"app.kubernetes.io/instance": "llama"},
            namespaces=("serving",),
        ),
    )
    (sm,) = chart_documents(chart)
    assert validate_manifests([sm]) == []
    assert sm["kind"] == "ServiceMonitor"
    assert sm["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/instance": "llama"}
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["serving"]}


def test_bad_monitor_props_are_reported_together():
    with pytest.raises(
        ConfigError,
        match=r"(?s)3 problems.*pod_labels: is empty.*fix: give the labels.*port: is not a port name.*"
        r"interval: is not a scrape interval \(got '15'\).*fix: write a duration",
    ):
        VllmMonitorProps(name="vllm", namespace="serving", pod_labels={}, port="HTTP_PORT", interval="15")
