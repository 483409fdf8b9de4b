"""Our cdk-nag pack (``EksLlmStack-EKS1/EKS2``) judged by the real cdk-nag and aws-cdk-lib.

The pack finds the EKS clusters itself rather than through cdk-nag's tree walk (which calls back into
Python for every CloudFormation resource). Its reports are compared with those of a pack written the
way cdk-nag's base class expects (``checkResource`` + ``applyRule``), on the same trees, and the
synth-time gate is checked through aws-cdk-lib's own validation report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsii
import pytest
from aws_cdk import App, CfnResource, IResolvable, IResolveContext, Stack, Validations
from aws_cdk import aws_eks as eks_l1
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from cdk_nag import IApplyRule, NagMessageLevel, NagPack, NagRuleCompliance
from constructs import Construct

from eks_llm_stack.gates import nag
from eks_llm_stack.gates.nag import (
    CONTROL_PLANE_LOG_TYPES,
    EksLlmStackChecks,
    acknowledge,
    acknowledge_generated,
    nag_report,
)

ACK_KEY = "aws:cdk:acknowledged-rules"
EKS1 = "EksLlmStack-EKS1"
EKS2 = "EksLlmStack-EKS2"


# -- the oracle: the same rules applied through cdk-nag's own walk, applyRule and isAcknowledged ----
@jsii.implements(IApplyRule)
class _Rule:
    def __init__(self, node: CfnResource, suffix: str, check: Any, info: str, explanation: str) -> None:
        self._node, self._suffix, self._check, self._info, self._explanation = node, suffix, check, info, explanation

    @property
    def node(self) -> CfnResource:
        return self._node

    @property
    def info(self) -> str:
        return self._info

    @property
    def explanation(self) -> str:
        return self._explanation

    @property
    def level(self) -> NagMessageLevel:
        return NagMessageLevel.ERROR

    @property
    def rule_suffix_override(self) -> str:
        return self._suffix

    def rule(self, node: CfnResource) -> NagRuleCompliance:
        result: NagRuleCompliance = self._check(node)
        return result


class _WalkedChecks(NagPack):
    def __init__(self, *, verbose: bool = False) -> None:
        super().__init__(None, verbose=verbose)
        self._pack_name = nag.PACK_NAME

    @property
    def name(self) -> str:
        return nag.PACK_NAME

    @jsii.member(jsii_name="checkResource")
    def _check_resource(self, node: CfnResource) -> None:
        if node.cfn_resource_type != "AWS::EKS::Cluster":
            return
        for suffix, check, info, explanation in nag._EKS_RULES:
            self._apply_rule(_Rule(node, suffix, check, info, explanation))  # type: ignore[arg-type]


def _plain(report: Any) -> dict[str, Any]:
    return {
        "success": report.success,
        "violations": [
            {
                "rule": v.rule_name,
                "description": v.description,
                "severity": v.severity,
                "fix": v.fix,
                "resources": [
                    (r.construct_path, r.locations, r.resource_logical_id, r.template_path)
                    for r in v.violating_resources
                ],
            }
            for v in report.violations
        ],
    }


# -- trees -------------------------------------------------------------------------------------------
def _cluster(
    scope: Construct,
    id: str,
    *,
    public: bool | None = None,
    cidrs: list[str] | None = None,
    logs: tuple[str, ...] = (),
    vpc: Any = None,
) -> eks_l1.CfnCluster:
    config: dict[str, Any] = {"subnet_ids": ["subnet-1", "subnet-2"]}
    if public is not None:
        config["endpoint_public_access"] = public
    if cidrs is not None:
        config["public_access_cidrs"] = cidrs
    return eks_l1.CfnCluster(
        scope,
        id,
        role_arn="arn:aws:iam::123456789012:role/eks",
        resources_vpc_config=vpc or eks_l1.CfnCluster.ResourcesVpcConfigProperty(**config),
        logging=eks_l1.CfnCluster.LoggingProperty(
            cluster_logging=eks_l1.CfnCluster.ClusterLoggingProperty(
                enabled_types=[eks_l1.CfnCluster.LoggingTypeConfigProperty(type=t) for t in logs]
            )
        ),
    )


@jsii.implements(IResolvable)
class _Unresolvable:
    """A token whose resolution fails, as an intrinsic cdk-nag cannot evaluate would."""

    @property
    def creation_stack(self) -> list[str]:
        return []

    def resolve(self, context: IResolveContext) -> Any:
        raise ValueError("the VPC configuration cannot be resolved here")

    def to_string(self) -> str:
        return "${Token[Unresolvable]}"


def _mixed_tree() -> App:
    """Compliant, open, unlogged and acknowledged clusters in two stacks, between other resources."""
    app = App()
    first = Stack(app, "First")
    s3.Bucket(first, "Bucket")
    _cluster(first, "Open", logs=CONTROL_PLANE_LOG_TYPES)
    _cluster(first, "Private", public=False, logs=CONTROL_PLANE_LOG_TYPES)
    _cluster(first, "Restricted", public=True, cidrs=["203.0.113.0/24"], logs=CONTROL_PLANE_LOG_TYPES)
    _cluster(first, "Neither", public=True, cidrs=["10.0.0.0/8", "0.0.0.0/0"], logs=("api", "audit"))
    acked = _cluster(first, "AckedOnResource")
    acknowledge(acked, EKS1, "A probe cluster that exists only in this test.")
    second = Stack(app, "Second")
    group = Construct(second, "Group")
    _cluster(group, "AckedOnAncestor", logs=("api",))
    acknowledge(group, EKS2, "A probe group that exists only in this test.")
    # The key form aws-cdk-lib < 2.262.1 wrote, which cdk-nag still accepts.
    legacy = _cluster(second, "LegacyKey")
    legacy.node.add_metadata(ACK_KEY, {"annotation::EksLlmStack-EKS1": "A probe cluster with a legacy key."})
    # Acknowledged for the validation framework only ("<plugin>::<rule>"): cdk-nag still reports it.
    plugin = _cluster(second, "PluginKey", logs=CONTROL_PLANE_LOG_TYPES)
    acknowledge(plugin, f"{nag.PACK_NAME}::{EKS1}", "A probe cluster acknowledged for the framework.")
    # A cluster written as a generic resource: no typed properties, so both rules find it open.
    CfnResource(second, "Generic", type="AWS::EKS::Cluster", properties={"Name": "generic"})
    iam.Role(second, "Role", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    return app


def _throwing_tree() -> App:
    app = App()
    stack = Stack(app, "Throws")
    _cluster(stack, "Cluster", vpc=_Unresolvable(), logs=CONTROL_PLANE_LOG_TYPES)
    return app


@pytest.mark.parametrize("verbose", [False, True])
@pytest.mark.parametrize("tree", [_mixed_tree, _throwing_tree])
def test_the_pack_reports_what_cdk_nags_own_walk_reports(tree: Any, verbose: bool) -> None:
    app = tree()
    expected = _plain(_WalkedChecks(verbose=verbose).validate_scope(app))
    assert _plain(EksLlmStackChecks(verbose=verbose).validate_scope(app)) == expected
    for stack in app.node.children:  # a stack as the scope, as nag_report is used
        assert _plain(EksLlmStackChecks(verbose=verbose).validate_scope(stack)) == _plain(
            _WalkedChecks(verbose=verbose).validate_scope(stack)
        )


def test_the_report_of_the_mixed_tree() -> None:
    report = _plain(EksLlmStackChecks().validate_scope(_mixed_tree()))
    info = {suffix: text for suffix, _, text, _ in nag._EKS_RULES}
    assert report == {
        "success": False,
        "violations": [
            {
                "rule": EKS1,
                "description": info["EKS1"],
                "severity": "error",
                "fix": None,
                "resources": [
                    (path, ["Properties"], None, None)
                    for path in (
                        "First/Open",
                        "First/Neither",
                        "Second/Group/AckedOnAncestor",
                        "Second/PluginKey",
                        "Second/Generic",
                    )
                ],
            },
            {
                "rule": EKS2,
                "description": info["EKS2"],
                "severity": "error",
                "fix": None,
                "resources": [
                    (path, ["Properties"], None, None)
                    for path in ("First/Neither", "First/AckedOnResource", "Second/LegacyKey", "Second/Generic")
                ],
            },
        ],
    }


def test_a_rule_that_throws_is_a_finding_of_that_rule() -> None:
    [violation] = EksLlmStackChecks().validate_scope(_throwing_tree()).violations
    assert violation.rule_name == EKS1
    assert violation.description == (
        "Rule threw an error during validation. "
        "This is generally caused by a parameter referencing an intrinsic function."
    )
    [verbose] = EksLlmStackChecks(verbose=True).validate_scope(_throwing_tree()).violations
    assert "the VPC configuration cannot be resolved here" in verbose.description


def test_nag_report_lists_our_findings_with_the_aws_solutions_ones() -> None:
    stack = Stack(App(), "S")
    _cluster(stack, "Cluster", public=True, logs=CONTROL_PLANE_LOG_TYPES)
    found = {(v.rule, v.severity, v.path) for v in nag_report(stack)}
    assert (EKS1, "error", "S/Cluster") in found
    assert (EKS2, "error", "S/Cluster") not in found
    assert any(rule.startswith("AwsSolutions-") for rule, _, _ in found)


def test_the_pack_never_runs_cdk_nags_per_resource_walk() -> None:
    with pytest.raises(RuntimeError, match="run through validate_scope"):
        EksLlmStackChecks()._check_resource(s3.CfnBucket(Stack(App(), "S"), "B"))


# -- at synth: the pack as a policy-validation plugin of aws-cdk-lib ---------------------------------
def _synth_with_our_pack(tmp_path: Path, acknowledge_findings: bool) -> tuple[str, dict[str, Any]] | None:
    app = App(outdir=str(tmp_path))
    Validations.of(app).add_plugins(EksLlmStackChecks(app, verbose=True))
    stack = Stack(app, "Gate")
    s3.CfnBucket(stack, "Other")
    cluster = _cluster(stack, "Cluster", logs=("api",))
    if acknowledge_findings:
        acknowledge(cluster, EKS1, "A probe cluster that exists only in this test.")
        acknowledge(stack, EKS2, "A probe stack that exists only in this test.")
    try:
        app.synth()
    except RuntimeError as err:
        report = json.loads((tmp_path / "validation-report.json").read_text())
        [ours] = [r for r in report["pluginReports"] if r["pluginName"] == nag.PACK_NAME]
        for violation in ours["violations"]:
            for construct in violation["violatingConstructs"]:
                construct.pop("stackTraces", None)  # where the node process ran: not ours to pin
        return str(err), dict(ours)
    return None


def test_synth_fails_on_an_open_unlogged_cluster_with_our_rules(tmp_path: Path) -> None:
    verbose = {suffix: f"{info} {why}" for suffix, _, info, why in nag._EKS_RULES}
    construct = {"constructPath": "Gate/Cluster", "constructFqn": "aws-cdk-lib.aws_eks.CfnCluster"}
    failed = _synth_with_our_pack(tmp_path, acknowledge_findings=False)
    assert failed is not None
    message, ours = failed
    assert message.startswith("ValidationFailed")
    for suffix in ("EKS1", "EKS2"):
        assert (
            f"ERROR {verbose[suffix]} ({nag.PACK_NAME})\n   Gate/Cluster aws-cdk-lib.aws_eks.CfnCluster\n"
            f"   Acknowledge with '{nag.PACK_NAME}::{nag.PACK_NAME}-{suffix}'"
        ) in message
    for violation in ours["violations"]:
        [found] = violation["violatingConstructs"]
        assert {k: found[k] for k in construct} == construct
        del violation["violatingConstructs"]
    assert ours == {
        "pluginName": nag.PACK_NAME,
        "conclusion": "failure",
        "violations": [
            {"ruleName": EKS1, "description": verbose["EKS1"], "severity": "error"},
            {"ruleName": EKS2, "description": verbose["EKS2"], "severity": "error"},
        ],
    }


def test_synth_passes_once_the_findings_are_acknowledged(tmp_path: Path) -> None:
    assert _synth_with_our_pack(tmp_path, acknowledge_findings=True) is None
    assert (tmp_path / "Gate.template.json").exists()


# -- acknowledge_generated ---------------------------------------------------------------------------
def test_acknowledge_generated_acknowledges_each_granular_finding_on_its_resource() -> None:
    stack = Stack(App(), "S")
    role = iam.Role(
        stack,
        "Role",
        assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
        managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("AmazonEKSWorkerNodePolicy")],
    )
    before = [v.rule for v in nag_report(role)]
    assert [r for r in before if r.startswith("AwsSolutions-IAM4[")]
    done = acknowledge_generated(role, ("AwsSolutions-IAM4",), "A probe role that exists only in this test.")
    assert done == [f"S/Role/Resource: {r}" for r in before if r.startswith("AwsSolutions-IAM4")]
    assert not [v for v in nag_report(role) if v.rule.startswith("AwsSolutions-IAM4")]


def test_acknowledge_generated_runs_our_pack_for_our_rules() -> None:
    stack = Stack(App(), "S")
    group = Construct(stack, "Generated")
    _cluster(group, "Cluster", logs=CONTROL_PLANE_LOG_TYPES)
    assert acknowledge_generated(group, ("AwsSolutions-IAM5",), "Not a rule this subtree breaks.") == []
    done = acknowledge_generated(group, (EKS1,), "A probe cluster that exists only in this test.")
    assert done == [f"S/Generated/Cluster: {EKS1}"]
    assert EKS1 not in {v.rule for v in nag_report(stack)}


def test_acknowledge_generated_writes_the_metadata_one_acknowledgment_per_finding_writes() -> None:
    def role_stack() -> tuple[Stack, iam.Role]:
        stack = Stack(App(), "S")
        policies = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly")
        role = iam.Role(
            stack,
            "Role",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(p) for p in policies],
        )
        return stack, role

    reason = "A probe role that exists only in this test."
    batched_stack, batched = role_stack()
    done = acknowledge_generated(batched, ("AwsSolutions-IAM4",), reason)
    assert len(done) == 2
    one_by_one_stack, _ = role_stack()
    for line in done:
        path, rule = line.split(": ", 1)
        acknowledge(one_by_one_stack.node.find_child("Role").node.find_child(path.rsplit("/", 1)[1]), rule, reason)

    def entries(stack: Stack) -> list[tuple[str, str, Any]]:  # logical ids are tokens numbered per app
        return [
            (c.node.path, m.type, m.data)
            for c in stack.node.find_all()
            for m in c.node.metadata
            if m.type != "aws:cdk:logicalId"
        ]

    assert entries(batched_stack) == entries(one_by_one_stack)
    assert [data for _, t, data in entries(batched_stack) if t == ACK_KEY] == [
        {f"Annotation::{line.split(': ', 1)[1]}": reason} for line in done
    ]
