"""The Karpenter controller: chart, Pod Identity role and policy, interruption queue and rules."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match
from gpu_fixtures import GpuStack, build

from eks_llm_stack import versions
from eks_llm_stack.constructs.karpenter import CLUSTER_NAME_TAG, MUTATING_EC2_ACTIONS, KarpenterProps
from eks_llm_stack.conventions import SYSTEM_NODE_LABEL
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.gates.iam import karpenter_reference
from eks_llm_stack.gates.nag import nag_report


@pytest.fixture(scope="module")
def built() -> GpuStack:
    return build()


@pytest.fixture(scope="module")
def template(built: GpuStack):  # type: ignore[no-untyped-def]
    return built.template()


def _controller_statements(template) -> list[dict]:  # type: ignore[no-untyped-def]
    policies = template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"PolicyName": Match.string_like_regexp("ControllerPolicy")}}
    )
    (policy,) = policies.values()
    return policy["Properties"]["PolicyDocument"]["Statement"]


def test_interruption_queue_is_encrypted_and_short_lived(template) -> None:  # type: ignore[no-untyped-def]
    template.has_resource_properties("AWS::SQS::Queue", {"SqsManagedSseEnabled": True, "MessageRetentionPeriod": 300})


def test_the_reference_event_rules_feed_the_queue(template) -> None:  # type: ignore[no-untyped-def]
    rules = template.find_resources("AWS::Events::Rule")
    found = {
        (r["Properties"]["EventPattern"]["source"][0], r["Properties"]["EventPattern"]["detail-type"][0])
        for r in rules.values()
    }
    # The five rules of Karpenter 1.14.1's reference template, capacity reservation warnings included.
    assert found == set(karpenter_reference()[1])
    assert ("aws.ec2", "EC2 Capacity Reservation Instance Interruption Warning") in found
    queue_id = next(iter(template.find_resources("AWS::SQS::Queue")))
    assert all(r["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]} for r in rules.values())


def test_controller_has_the_v1_14_permissions_it_was_missing(template) -> None:  # type: ignore[no-untyped-def]
    statements = {s["Sid"]: s for s in _controller_statements(template)}
    assert "ec2:DescribeInstanceStatus" in statements["AllowRegionalReadActions"]["Action"]
    assert statements["AllowZonalShiftStatusReadOnly"]["Action"] == "arc-zonal-shift:GetManagedResource"
    passed = statements["AllowPassingInstanceRole"]["Condition"]["StringEquals"]["iam:PassedToService"]
    assert passed == ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]


def test_no_mutating_ec2_action_on_star_without_a_tag_condition(template) -> None:  # type: ignore[no-untyped-def]
    statements = _controller_statements(template)
    for s in statements:
        actions = {s["Action"]} if isinstance(s["Action"], str) else set(s["Action"])
        resources = [s["Resource"]] if not isinstance(s["Resource"], list) else s["Resource"]
        if actions & MUTATING_EC2_ACTIONS and "*" in resources:
            conditions = s.get("Condition", {})
            tag_keys = [k for block in conditions.values() for k in block if "Tag/" in k]
            assert tag_keys, f"{s.get('Sid')}: mutating EC2 actions on '*' without a tag condition"


def test_mutating_actions_on_created_resources_are_scoped_to_this_cluster(template) -> None:  # type: ignore[no-untyped-def]
    statements = {s["Sid"]: s for s in _controller_statements(template)}
    for sid in ("AllowScopedEC2InstanceActionsWithTags", "AllowScopedDeletion", "AllowScopedResourceCreationTagging"):
        equals = statements[sid]["Condition"]["StringEquals"]
        key = next(k for k in equals if k.endswith(f"Tag/{CLUSTER_NAME_TAG}"))
        assert equals[key] == {"Ref": next(iter(template.find_resources("AWS::EKS::Cluster")))}


def test_controller_can_describe_placement_groups(template) -> None:  # type: ignore[no-untyped-def]
    reads = next(s for s in _controller_statements(template) if s["Sid"] == "AllowRegionalReadActions")
    assert "ec2:DescribePlacementGroups" in reads["Action"]
    assert reads["Condition"] == {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}


def test_controller_role_is_assumed_through_pod_identity(template) -> None:  # type: ignore[no-untyped-def]
    template.has_resource_properties(
        "AWS::EKS::PodIdentityAssociation", {"Namespace": "kube-system", "ServiceAccount": "karpenter"}
    )
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": ["sts:AssumeRole", "sts:TagSession"],
                                "Principal": {"Service": "pods.eks.amazonaws.com"},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_node_role_joins_through_an_ec2_linux_access_entry(template) -> None:  # type: ignore[no-untyped-def]
    template.has_resource_properties("AWS::EKS::AccessEntry", {"Type": "EC2_LINUX", "AccessPolicies": []})


def test_chart_is_pinned_and_runs_on_the_system_nodes(built: GpuStack, template) -> None:  # type: ignore[no-untyped-def]
    charts = template.find_resources("Custom::AWSCDK-EKS-HelmChart", {"Properties": {"Release": "karpenter"}})
    (chart,) = charts.values()
    assert chart["Properties"]["Version"] == versions.KARPENTER.version
    assert chart["Properties"]["Repository"] == "oci://public.ecr.aws/karpenter/karpenter"
    values = built.karpenter.chart_values()
    assert values["nodeSelector"] == {SYSTEM_NODE_LABEL: "true"}
    assert {"key": "CriticalAddonsOnly", "operator": "Exists"} in values["tolerations"]


def test_chart_waits_for_its_pod_identity(template) -> None:  # type: ignore[no-untyped-def]
    chart = next(
        iter(template.find_resources("Custom::AWSCDK-EKS-HelmChart", {"Properties": {"Release": "karpenter"}}).values())
    )
    assoc = next(iter(template.find_resources("AWS::EKS::PodIdentityAssociation")))
    assert assoc in chart["DependsOn"]


def test_no_unacknowledged_nag_findings_in_karpenter(built: GpuStack) -> None:
    findings = [str(v) for v in nag_report(built.stack) if "/Karpenter/" in v.path]
    assert findings == []


def test_bad_props_list_every_problem() -> None:
    with pytest.raises(
        ConfigError, match=r"(?s)namespace: is not a valid Kubernetes name.*replicas: is outside 1-5.*fix: use 2"
    ):
        KarpenterProps(namespace="Kube_System", replicas=0)
