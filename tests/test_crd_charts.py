"""CRDs as releases of their own (helm never upgrades a chart's crds/ folder), within CloudFormation's limits."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import ROOT

from eks_llm_stack import versions
from eks_llm_stack.constructs.crds import build_crd_chart, crd_files, crd_names
from eks_llm_stack.gates.helm_values import check_templates

#: CloudFormation's limit for a template uploaded to S3 (what `cdk deploy` does for large templates).
TEMPLATE_LIMIT_BYTES = 1_000_000


def _helm_charts(synth) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {
        logical_id: r
        for t in synth.templates.values()
        for logical_id, r in t["Resources"].items()
        if r["Type"] == "Custom::AWSCDK-EKS-HelmChart"
    }


@pytest.mark.parametrize(("main", "pin"), [("karpenter", versions.KARPENTER), ("lws", versions.LWS)])
def test_main_chart_skips_crds_and_waits_for_its_crd_release(any_synth, main: str, pin) -> None:  # type: ignore[no-untyped-def]
    charts = _helm_charts(any_synth)
    (crd_id,) = [k for k, r in charts.items() if r["Properties"].get("Release") == f"{pin.chart}-crds"]
    (main_chart,) = [r for r in charts.values() if r["Properties"].get("Release") == main]
    assert main_chart["Properties"]["SkipCrds"] is True
    assert crd_id in main_chart["DependsOn"]
    assert "ChartAssetURL" in charts[crd_id]["Properties"]


@pytest.mark.parametrize("pin", [versions.KARPENTER, versions.LWS])
def test_the_crd_chart_renders_every_crd_of_the_vendored_chart_verbatim(default_synth, pin) -> None:  # type: ignore[no-untyped-def]
    check_templates(
        default_synth.templates,
        out_dir=ROOT / "dist" / "helm" / "default",
        assembly_dir=default_synth.outdir / "cdk.out",
    )
    rendered = (ROOT / "dist" / "helm" / "default" / f"{pin.chart}-crds.yaml").read_text()
    docs = [d for d in yaml.load_all(rendered, Loader=yaml.CSafeLoader) if d]
    assert sorted(d["metadata"]["name"] for d in docs) == sorted(crd_names(pin))
    originals = [d for c in crd_files(pin).values() for d in yaml.load_all(c, Loader=yaml.CSafeLoader) if d]
    assert sorted(json.dumps(d, sort_keys=True) for d in docs) == sorted(
        json.dumps(d, sort_keys=True) for d in originals
    )


def test_lws_crds_are_too_large_for_a_template_so_they_travel_as_an_asset() -> None:
    size = sum(len(c) for c in crd_files(versions.LWS).values())
    assert size > TEMPLATE_LIMIT_BYTES  # why a KubernetesManifest (inline in the template) cannot carry them
    assert (build_crd_chart(versions.LWS) / "files" / "leaderworkerset.x-k8s.io_leaderworkersets.yaml").is_file()


def test_every_template_stays_under_the_cloudformation_limit(any_synth) -> None:
    for name, template in any_synth.templates.items():
        assert len(json.dumps(template, separators=(",", ":"))) < TEMPLATE_LIMIT_BYTES, name
