"""The DCGM exporter chart: GPU nodes only, pinned image, our counters, least privilege, scraped."""

from __future__ import annotations

import cdk8s
import pytest

from eks_llm_stack import versions
from eks_llm_stack.charts.dcgm_exporter import POD_RESOURCES_DIR, DcgmExporterChart, DcgmExporterProps
from eks_llm_stack.charts.render import chart_documents
from eks_llm_stack.conventions import GPU_COUNT_LABEL, GPU_TAINT_KEY, POOL_LABEL
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.gates.manifests import validate_manifests
from eks_llm_stack.monitoring import metrics


def render(**props) -> dict[str, dict]:
    docs = chart_documents(DcgmExporterChart(cdk8s.App(), "dcgm", props=DcgmExporterProps(**props)))
    return {d["kind"]: d for d in docs}


@pytest.fixture(scope="module")
def objs() -> dict[str, dict]:
    return render()


def pod_spec(objs):
    return objs["DaemonSet"]["spec"]["template"]["spec"]


def container(objs):
    return pod_spec(objs)["containers"][0]


def test_manifests_validate_against_kubernetes_and_prometheus_operator_schemas(objs):
    assert sorted(objs) == ["ConfigMap", "DaemonSet", "Service", "ServiceAccount", "ServiceMonitor"]
    assert validate_manifests(objs.values()) == []


def test_runs_only_on_gpu_nodes(objs):
    terms = pod_spec(objs)["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [{"matchExpressions": [{"key": GPU_COUNT_LABEL, "operator": "Exists"}]}]
    assert {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"} in pod_spec(objs)["tolerations"]


def test_requests_no_gpu(objs):
    resources = container(objs)["resources"]
    assert "nvidia.com/gpu" not in resources.get("limits", {}) and "nvidia.com/gpu" not in resources["requests"]


def test_pool_restricts_the_nodes():
    spec = render(pool="inference")["DaemonSet"]["spec"]["template"]["spec"]
    exprs = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert {"key": POOL_LABEL, "operator": "In", "values": ["inference"]} in exprs["matchExpressions"]


def test_image_is_the_pinned_one(objs):
    assert (
        container(objs)["image"]
        == versions.DCGM_EXPORTER.uri
        == f"nvcr.io/nvidia/k8s/dcgm-exporter:{versions.DCGM_EXPORTER.tag}"
    )


def test_counters_config_map_exports_every_field_and_is_the_file_read(objs):
    csv = objs["ConfigMap"]["data"]["counters.csv"]
    fields = [line.split(",")[0] for line in csv.splitlines() if line and not line.startswith("#")]
    assert fields == [f.name for f in metrics.DCGM_FIELDS]
    assert container(objs)["args"] == ["-f", "/etc/dcgm-exporter/eks-llm-stack/counters.csv"]
    mount = next(v for v in container(objs)["volumeMounts"] if v["name"] == "counters")
    assert mount["mountPath"] == "/etc/dcgm-exporter/eks-llm-stack"


def test_counters_cover_the_reference_alert_metrics_and_profiling(objs):
    csv = objs["ConfigMap"]["data"]["counters.csv"]
    for name in (
        "DCGM_FI_DEV_GPU_TEMP",
        "DCGM_FI_DEV_GPU_UTIL",
        "DCGM_FI_DEV_FB_USED",
        "DCGM_FI_DEV_FB_FREE",
        "DCGM_FI_DEV_SM_CLOCK",
        "DCGM_FI_DEV_POWER_USAGE",
        "DCGM_FI_DEV_XID_ERRORS",
        "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
        "DCGM_FI_PROF_PCIE_TX_BYTES",
        "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    ):
        assert f"\n{name}, " in csv


def test_profiling_metrics_can_be_turned_off():
    csv = render(profiling_metrics=False)["ConfigMap"]["data"]["counters.csv"]
    assert "DCGM_FI_PROF_" not in csv and "DCGM_FI_DEV_GPU_TEMP" in csv


def test_only_cap_sys_admin_and_nothing_else(objs):
    sc = container(objs)["securityContext"]
    assert sc["capabilities"] == {"drop": ["ALL"], "add": ["SYS_ADMIN"]}
    assert sc["privileged"] is False
    spec = pod_spec(objs)
    assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC")
    assert spec["automountServiceAccountToken"] is False


def test_only_the_pod_resources_socket_is_mounted_from_the_host(objs):
    host = [v for v in pod_spec(objs)["volumes"] if "hostPath" in v]
    assert host == [{"name": "pod-resources", "hostPath": {"path": POD_RESOURCES_DIR, "type": "Directory"}}]
    mount = next(v for v in container(objs)["volumeMounts"] if v["name"] == "pod-resources")
    assert mount == {"name": "pod-resources", "mountPath": POD_RESOURCES_DIR, "readOnly": True}


def test_pod_attribution_is_on_and_its_labels_are_honoured(objs):
    env = {e["name"]: e.get("value") for e in container(objs)["env"]}
    assert env["DCGM_EXPORTER_KUBERNETES"] == "true"
    assert objs["ServiceMonitor"]["spec"]["endpoints"][0]["honorLabels"] is True


def test_without_attribution_no_host_path():
    objs = render(pod_attribution=False)
    assert not [v for v in objs["DaemonSet"]["spec"]["template"]["spec"]["volumes"] if "hostPath" in v]
    env = {e["name"]: e.get("value") for e in objs["DaemonSet"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DCGM_EXPORTER_KUBERNETES"] == "false"


def test_service_monitor_scrapes_the_service_port(objs):
    sm, svc, ds = objs["ServiceMonitor"]["spec"], objs["Service"], objs["DaemonSet"]
    assert sm["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["namespaceSelector"] == {"matchNames": [svc["metadata"]["namespace"]]}
    assert sm["endpoints"][0]["port"] == svc["spec"]["ports"][0]["name"] == "metrics"
    assert svc["spec"]["selector"].items() <= ds["spec"]["template"]["metadata"]["labels"].items()
    assert sm["endpoints"][0]["interval"] == "15s"


def test_service_monitor_adds_node_pool_and_capacity_type(objs):
    sm = objs["ServiceMonitor"]["spec"]
    assert sm["attachMetadata"] == {"node": True}
    by_target = {r["targetLabel"]: r for r in sm["endpoints"][0]["relabelings"]}
    assert by_target[metrics.NODE_LABEL]["sourceLabels"] == ["__meta_kubernetes_pod_node_name"]
    assert by_target[metrics.POOL_LABEL]["sourceLabels"] == ["__meta_kubernetes_node_label_eks_llm_stack_io_pool"]
    assert by_target[metrics.CAPACITY_TYPE_LABEL]["sourceLabels"] == [
        "__meta_kubernetes_node_label_karpenter_sh_capacity_type"
    ]
    assert by_target[metrics.COMPONENT_LABEL]["replacement"] == metrics.DCGM_COMPONENT


def test_names_and_namespace_come_from_props():
    objs = render(name="gpu-metrics", namespace="observability")
    assert {o["metadata"]["name"] for k, o in objs.items() if k != "ConfigMap"} == {"gpu-metrics"}
    assert {o["metadata"]["namespace"] for o in objs.values()} == {"observability"}


def test_bad_props_are_reported_together():
    with pytest.raises(
        ConfigError,
        match=r"(?s)3 problems.*namespace: is not a valid Kubernetes name.*fix: use at most 63"
        r".*port: is not an unprivileged port \(got 80\).*fix: use 1024..65535"
        r".*scrape_interval: is not a scrape interval \(got 'often'\).*fix: write a duration",
    ):
        DcgmExporterProps(namespace="Monitoring", port=80, scrape_interval="often")
