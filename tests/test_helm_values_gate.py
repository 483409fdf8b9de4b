"""Gate: every Helm release of every profile, rendered by helm from the vendored chart with our values.

The chart judges our values (undefined keys, render errors, its values schema) and the Kubernetes 1.35
schemas and vendored CRDs judge what it renders. Output is kept in dist/helm/<profile>/ for review.
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache

import pytest
import yaml
from conftest import ROOT, synthesized

from eks_llm_stack import versions
from eks_llm_stack.gates.helm import HELM_VERSION, cache_dir, helm_binary
from eks_llm_stack.gates.helm_values import (
    CHARTS_DIR,
    FREE_FORM_KEYS,
    FREE_FORM_PATHS,
    HelmRelease,
    chart_archive,
    chart_spec,
    check_release,
    check_templates,
    helm_releases,
    undefined_value_paths,
)

DIST = ROOT / "dist" / "helm"


@cache
def gate(profile: str) -> tuple[str, ...]:
    """The gate's problems for one profile (run once per test run; writes dist/helm/<profile>/)."""
    synth = synthesized(profile)
    return tuple(check_templates(synth.templates, out_dir=DIST / profile, assembly_dir=synth.outdir / "cdk.out"))


def release(profile: str, name: str) -> HelmRelease:
    synth = synthesized(profile)
    return next(r for r in helm_releases(synth.templates, synth.outdir / "cdk.out") if r.release == name)


def test_every_release_of_every_profile_renders_and_validates(any_synth) -> None:
    assert list(gate(any_synth.profile.name)) == []


def test_rendered_output_is_kept_for_review(any_synth) -> None:
    gate(any_synth.profile.name)
    for r in helm_releases(any_synth.templates, any_synth.outdir / "cdk.out"):
        rendered = DIST / any_synth.profile.name / f"{r.release}.yaml"
        assert any(yaml.safe_load_all(rendered.read_text())), rendered


def test_every_shipped_release_is_found_and_its_chart_vendored(production_synth) -> None:
    releases = {r.release: r for r in helm_releases(production_synth.templates, production_synth.outdir / "cdk.out")}
    assert {"karpenter", "kube-prometheus-stack", "external-secrets", "lws", "keda"} <= set(releases)
    assert "aws-load-balancer-controller" in releases and "aws-efa-k8s-device-plugin" in releases
    assert {"karpenter-crds", "lws-crds"} <= set(releases)
    for r in releases.values():
        if r.source is not None:  # a chart asset, staged in the cloud assembly
            assert r.source.parent == production_synth.outdir / "cdk.out" and r.release.endswith("-crds")
        else:
            assert chart_archive(r.chart, r.version).parent == CHARTS_DIR
    # CloudFormation values become placeholders, so the chart sees a string where the cluster name goes.
    assert releases["karpenter"].values["settings"]["clusterName"].startswith("${")


def test_helm_comes_from_the_kubectl_layer_at_its_pinned_version() -> None:
    binary = helm_binary()
    assert binary.is_file() and HELM_VERSION in binary.parent.name
    # Extracted once into the cache (the checkout's .cache/), not into a temp directory of the run.
    assert cache_dir() in binary.parents


def test_a_values_key_the_chart_does_not_define_fails() -> None:
    good = release("default", "karpenter")
    values = {**good.values, "controller": {**good.values["controller"], "resourcez": {}}, "replicaz": 3}
    problems = check_release(dataclasses.replace(good, values=values))
    assert len(problems) == 2
    assert "values key 'controller.resourcez' is not defined by the chart" in problems[0]
    assert "fix: correct the key (see karpenter-1.14.1.tgz/values.yaml)" in problems[0]
    assert "values key 'replicaz'" in problems[1]


def test_a_key_below_a_free_form_map_is_accepted_but_not_below_a_chart_setting() -> None:
    spec = chart_spec(chart_archive("karpenter", versions.KARPENTER.version))
    assert undefined_value_paths({"nodeSelector": {"anything/at-all": "x"}}, spec) == []
    assert undefined_value_paths({"settings": {"clusterNam": "x"}}, spec) == ["settings.clusterNam"]


def test_a_bad_value_fails_through_the_rendered_object() -> None:
    good = release("default", "karpenter")
    problems = check_release(dataclasses.replace(good, values={**good.values, "replicas": "two"}))
    assert problems, "a non-integer replica count must not pass"
    assert any("rendered Deployment kube-system/karpenter" in p and "replicas" in p for p in problems), problems


def test_a_value_the_chart_schema_refuses_is_a_render_error() -> None:
    good = release("default", "external-secrets")
    problems = check_release(dataclasses.replace(good, values={**good.values, "installCRDs": "yes"}))
    assert any("helm template failed" in p and "installCRDs" in p for p in problems), problems


def test_a_chart_that_is_not_vendored_fails() -> None:
    good = release("default", "keda")
    problems = check_release(dataclasses.replace(good, version="0.0.1"))
    assert problems == [
        f"{good.where.replace(good.version, '0.0.1')}: chart keda 0.0.1 is not vendored in {CHARTS_DIR}: "
        "add it (see its README)"
    ]


def test_free_form_exceptions_each_have_a_reason() -> None:
    reasons = [*FREE_FORM_KEYS.values(), *(r for paths in FREE_FORM_PATHS.values() for r in paths.values())]
    assert all(len(r) > 15 for r in reasons)


@pytest.mark.parametrize("alert", ["KubeControllerManagerDown", "KubeSchedulerDown", "etcdMembersDown"])
def test_no_alert_for_control_plane_parts_eks_does_not_expose(any_synth, alert: str) -> None:
    gate(any_synth.profile.name)
    rendered = (DIST / any_synth.profile.name / "kube-prometheus-stack.yaml").read_text()
    assert "alert: KubeAPIDown" in rendered  # the API server is scraped and alerted on
    assert f"alert: {alert}" not in rendered
    monitors = [
        d["metadata"]["name"] for d in yaml.safe_load_all(rendered) if d and d["kind"] in ("ServiceMonitor", "Service")
    ]
    assert not [m for m in monitors if any(p in m for p in ("controller-manager", "scheduler", "etcd"))]


def test_prometheus_operator_crds_are_upgraded_by_the_charts_own_job(default_synth) -> None:
    gate(default_synth.profile.name)
    docs = [d for d in yaml.safe_load_all((DIST / "default" / "kube-prometheus-stack.yaml").read_text()) if d]
    job = next(d for d in docs if d["kind"] == "Job" and "upgrade" in d["metadata"]["name"])
    assert "pre-upgrade" in job["metadata"]["annotations"]["helm.sh/hook"]
    images = [
        c["image"]
        for c in job["spec"]["template"]["spec"]["initContainers"] + job["spec"]["template"]["spec"]["containers"]
    ]
    assert images[0] == versions.BUSYBOX_IMAGE.uri
    assert job["spec"]["template"]["spec"]["nodeSelector"] == {"eks-llm-stack.io/system": "true"}


def test_a_structured_resources_block_is_checked_one_level_down() -> None:
    spec = chart_spec(chart_archive("keda", versions.KEDA.version))
    assert undefined_value_paths({"resources": {"operator": {"requests": {"cpu": "1"}}}}, spec) == []
    assert undefined_value_paths({"resources": {"operater": {}}}, spec) == ["resources.operater"]


def test_a_chart_asset_without_its_cloud_assembly_is_a_problem(default_synth) -> None:
    (crds,) = [r for r in helm_releases(default_synth.templates) if r.release == "karpenter-crds"]
    assert check_release(crds) == [
        f"{crds.where}: the chart asset was not found -- fix: pass the cloud assembly directory (cdk.out)"
    ]


def test_check_profiles_judges_what_its_caller_synthesizes(tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """The command-line gate takes the synthesizer from its caller: gates never import the stacks."""
    from eks_llm_stack.gates.helm_values import check_profiles

    good = release("default", "karpenter")
    resource = {
        "Type": "Custom::AWSCDK-EKS-HelmChart",
        "Properties": {
            "Chart": good.chart,
            "Version": good.version,
            "Release": good.release,
            "Namespace": good.namespace,
            "Values": json.dumps({**good.values, "replicaz": 3}),
        },
    }
    seen: list[str] = []

    def synthesize(profile: str, outdir):  # type: ignore[no-untyped-def]
        seen.append(profile)
        resources = {"Karpenter": resource} if profile == "bad" else {}
        return profile, {"Llm-Platform": {"Resources": resources}}, outdir

    monkeypatch.chdir(tmp_path)
    assert check_profiles(["empty"], synthesize) == 0
    assert check_profiles(["empty", "bad"], synthesize) == 1
    assert seen == ["empty", "empty", "bad"]
    err = capsys.readouterr().err
    assert "values key 'replicaz' is not defined by the chart" in err
