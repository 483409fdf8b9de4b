"""Quality gates over every shipped profile: cfn-lint, cdk-nag, Kubernetes schemas.

Each gate has a companion test that feeds it a known-bad input and sees it fail, so a gate
that silently stopped checking would be noticed.
"""

from __future__ import annotations

import copy

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3

from eks_llm_stack.gates.cfn_lint import CFN_LINT_EXCLUSIONS, embedded_manifests, lint_template
from eks_llm_stack.gates.manifests import DEFAULT_CRD_DIR as CRD_DIR
from eks_llm_stack.gates.manifests import validate_manifests
from eks_llm_stack.gates.nag import acknowledge, nag_report


# -- cfn-lint -------------------------------------------------------------------------------------
def test_cfn_lint_finds_nothing_in_any_template(any_synth) -> None:
    findings = [str(f) for name, t in any_synth.templates.items() for f in lint_template(t, name)]
    assert findings == []


def test_cfn_lint_exclusions_each_have_a_reason() -> None:
    assert all(len(reason) > 40 for reason in CFN_LINT_EXCLUSIONS.values())


def test_cfn_lint_gate_catches_a_bad_template(default_synth) -> None:
    bad = copy.deepcopy(default_synth.template("Network"))
    vpc_id = next(k for k, v in bad["Resources"].items() if v["Type"] == "AWS::EC2::VPC")
    bad["Resources"][vpc_id]["Properties"]["CidrBlock"] = 42
    bad["Resources"]["Orphan"] = {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "Nowhere"}}}
    rules = {f.rule for f in lint_template(bad, "bad")}
    assert {"E1012", "E3012"} <= rules or len(rules) >= 2


# -- cdk-nag ----------------------------------------------------------------------------------------
def test_no_unacknowledged_nag_findings(any_synth) -> None:
    findings = [str(v) for v in nag_report(any_synth.built.app)]
    assert findings == []


def test_nag_gate_catches_an_unencrypted_bucket_and_honours_an_acknowledgment() -> None:
    stack = Stack(App(), "NagProbe")
    bucket = s3.Bucket(stack, "Plain", encryption=s3.BucketEncryption.UNENCRYPTED)
    rules = {v.rule for v in nag_report(stack)}
    assert "AwsSolutions-S1" in rules  # no server access logs
    acknowledge(bucket.node.default_child, "AwsSolutions-S1", "A probe bucket that exists only in this test.")  # type: ignore[arg-type]
    assert "AwsSolutions-S1" not in {v.rule for v in nag_report(stack)}


def test_an_acknowledgment_needs_a_reason() -> None:
    stack = Stack(App(), "NagReason")
    bucket = s3.Bucket(stack, "B")
    with pytest.raises(ValueError, match="needs a real reason"):
        acknowledge(bucket, "AwsSolutions-S1", "ok")


# -- Kubernetes manifests ---------------------------------------------------------------------------
def test_written_manifests_validate(any_synth) -> None:
    docs = [d for docs in any_synth.manifests.values() for d in docs]
    assert docs, "every profile writes at least the namespaces chart"
    assert validate_manifests(docs, crd_dir=CRD_DIR) == []


def test_embedded_manifests_validate(any_synth) -> None:
    docs = [d for t in any_synth.templates.values() for _, d in embedded_manifests(t)]
    assert docs
    assert validate_manifests(docs, crd_dir=CRD_DIR) == []


def test_every_written_manifest_is_also_applied_by_cloudformation(any_synth) -> None:
    """dist/manifests holds what `cdk deploy` applies, and nothing else: the objects of the templates'
    manifests and the CRDs of the CRD charts (the reverse inclusion is tests/test_dist_manifests.py)."""
    from eks_llm_stack.gates.apply_order import applied_objects, asset_objects, object_key

    written = {object_key(d) for docs in any_synth.manifests.values() for d in docs}
    assets, problems = asset_objects(any_synth.templates, any_synth.outdir / "cdk.out")
    assert problems == []
    assert written <= set(applied_objects(any_synth.templates)) | set(assets)


def test_schema_gate_reports_every_error_of_a_bad_manifest() -> None:
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "selector": {},
            "replicas": "two",
            "template": {"spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": "http"}]}]}},
        },
    }
    errors = validate_manifests([bad], crd_dir=CRD_DIR)
    assert len(errors) == 2
    assert any("spec.replicas" in e for e in errors)
    assert any("containerPort" in e for e in errors)


def test_schema_gate_checks_custom_kinds_against_their_crd() -> None:
    nodepool = {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "x"},
        "spec": {
            "template": {"spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "x"}}},
            "disruption": {"consolidationPolicy": "Sometimes"},
        },
    }
    errors = validate_manifests([nodepool], crd_dir=CRD_DIR)
    assert any("requirements" in e for e in errors)
    assert any("consolidationPolicy" in e for e in errors)


def test_schema_gate_fails_a_kind_with_no_schema() -> None:
    errors = validate_manifests(
        [{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}], crd_dir=CRD_DIR
    )
    assert errors and "no schema for this kind" in errors[0]


def test_the_crd_directory_is_there() -> None:
    assert sorted(p.name for p in CRD_DIR.glob("*.yaml")), f"CRD schemas missing at {CRD_DIR}"
