"""Namespaces carry the Pod Security level their pods meet, and no more than they need.

The levels are read from the synthesized templates (the Namespace objects the stacks apply);
every pod our charts render is checked against its namespace's level by
:mod:`eks_llm_stack.gates.pod_security`, itself first shown to refuse what admission refuses.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from eks_llm_stack.gates.pod_security import pod_violations, violations

ENFORCE = "pod-security.kubernetes.io/enforce"

RESTRICTED_POD: dict[str, Any] = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        {
            "name": "app",
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        }
    ],
    "volumes": [{"name": "tmp", "emptyDir": {}}],
}


def test_the_gate_admits_a_restricted_pod_and_refuses_each_weakening():
    assert pod_violations(RESTRICTED_POD, "restricted") == []
    host = {**RESTRICTED_POD, "hostNetwork": True}
    assert pod_violations(host, "baseline") == ["hostNetwork: true"]
    path = {**RESTRICTED_POD, "volumes": [{"name": "h", "hostPath": {"path": "/"}}]}
    assert "volume h: hostPath" in pod_violations(path, "baseline")
    caps = json.loads(json.dumps(RESTRICTED_POD))
    caps["containers"][0]["securityContext"]["capabilities"] = {"add": ["SYS_ADMIN"]}
    assert any("SYS_ADMIN" in v for v in pod_violations(caps, "baseline"))
    assert any("drop ALL" in v for v in pod_violations(caps, "restricted"))
    no_seccomp = {**RESTRICTED_POD, "securityContext": {"runAsNonRoot": True}}
    assert pod_violations(no_seccomp, "baseline") == []
    assert pod_violations(no_seccomp, "restricted") == ["container app: seccompProfile is not RuntimeDefault"]
    assert pod_violations(host, "privileged") == []


def _platform_manifests(synth: Any) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for r in synth.template("Platform")["Resources"].values():
        if r["Type"] == "Custom::AWSCDK-EKS-KubernetesResource" and isinstance(r["Properties"]["Manifest"], str):
            docs += json.loads(r["Properties"]["Manifest"])
    return docs


def _levels(synth: Any) -> dict[str, str]:
    return {
        d["metadata"]["name"]: d["metadata"]["labels"][ENFORCE]
        for d in _platform_manifests(synth)
        if d["kind"] == "Namespace"
    }


def test_monitoring_is_restricted_and_only_the_node_agents_namespace_is_privileged(default_synth):
    levels = _levels(default_synth)
    assert levels["monitoring"] == "restricted"
    assert levels["llm-serving"] == "restricted"
    assert [ns for ns, level in levels.items() if level == "privileged"] == ["monitoring-node-agents"]


def test_every_namespace_a_helm_release_uses_is_created_labelled(default_synth):
    levels = _levels(default_synth)
    for r in default_synth.template("Platform")["Resources"].values():
        if r["Type"] == "Custom::AWSCDK-EKS-HelmChart":
            ns = r["Properties"]["Namespace"]
            if ns == "kube-system":
                continue
            assert levels.get(ns) in ("baseline", "restricted"), ns
            assert r["Properties"].get("CreateNamespace") is not True, ns
    assert levels["external-secrets"] == "restricted"
    assert levels["keda"] == "restricted"
    assert levels["lws-system"] == "restricted"


def test_node_exporter_and_dcgm_run_in_the_node_agents_namespace(default_synth):
    dcgm = default_synth.manifests["dcgm-exporter"]
    assert {d["metadata"]["namespace"] for d in dcgm} == {"monitoring-node-agents"}
    values = _helm_values(default_synth, "kube-prometheus-stack")
    assert values["prometheus-node-exporter"]["namespaceOverride"] == "monitoring-node-agents"


def _helm_values(synth: Any, release: str) -> dict[str, Any]:
    for r in synth.template("Platform")["Resources"].values():
        if r["Type"] == "Custom::AWSCDK-EKS-HelmChart" and r["Properties"]["Release"] == release:
            values = r["Properties"]["Values"]
            if isinstance(values, dict):  # Fn::Join with tokens: keep the literal parts
                values = "".join(x if isinstance(x, str) else '""' for x in values["Fn::Join"][1])
            return json.loads(values)
    raise AssertionError(f"no release {release}")


def test_grafana_reads_secrets_of_its_own_namespace_only(default_synth):
    grafana = _helm_values(default_synth, "kube-prometheus-stack")["grafana"]
    assert grafana["rbac"]["namespaced"] is True
    assert "searchNamespace" not in grafana["sidecar"]["dashboards"]


def test_keda_reads_secrets_of_its_own_namespace_only(default_synth):
    perms = _helm_values(default_synth, "keda")["permissions"]
    assert perms["operator"]["restrict"]["secret"] is True
    assert perms["metricServer"]["restrict"]["secret"] is True


@pytest.mark.parametrize("profile", ["default", "production.example", "ci-ephemeral"])
def test_every_pod_we_render_meets_its_namespace_level(profile):
    from conftest import synthesized

    synth = synthesized(profile)
    levels = _levels(synth)
    docs = [d for docs in synth.manifests.values() for d in docs]
    assert violations(docs, levels) == []
    # The gate is not vacuous here: our pods are found and checked.
    assert any(
        d["kind"] in ("Deployment", "DaemonSet", "LeaderWorkerSet")
        for d in docs
        if d["metadata"].get("namespace") in levels
    )


def test_dcgm_exporter_has_a_read_only_root_and_a_pod_security_context(default_synth):
    ds = next(d for d in default_synth.manifests["dcgm-exporter"] if d["kind"] == "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


def test_every_pod_of_every_helm_release_meets_its_namespace_level(production_synth):
    """The vendored charts rendered with our values (helm from the kubectl layer), checked like our own pods."""
    import yaml

    from eks_llm_stack.gates.helm_values import DEFAULT_CRD_DIR, _render, chart_archive, helm_releases

    levels = _levels(production_synth)
    checked = 0
    problems: list[str] = []
    releases = helm_releases({"p": production_synth.template("Platform")}, production_synth.outdir / "cdk.out")
    for release in releases:
        archive = release.source or chart_archive(release.chart, release.version)
        stdout, stderr, code = _render(
            archive, release.release, release.namespace, json.dumps(release.values, sort_keys=True), DEFAULT_CRD_DIR
        )
        assert code == 0, stderr
        docs = []
        for d in yaml.safe_load_all(stdout):
            if d:
                d.setdefault("metadata", {}).setdefault("namespace", release.namespace)
                docs.append(d)
        checked += sum(
            1
            for d in docs
            if d["metadata"]["namespace"] in levels and d["kind"] in ("Deployment", "DaemonSet", "StatefulSet", "Job")
        )
        problems += violations(docs, levels)
    assert problems == []
    assert checked >= 10
