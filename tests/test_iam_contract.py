"""Gate: each controller's policy against the controller's own reference policy (third_party/)."""

from __future__ import annotations

import copy

import pytest

from eks_llm_stack.constructs.serving_controllers import lbc_acknowledgements
from eks_llm_stack.gates.iam import (
    EFS_CSI,
    EXCLUSIONS,
    EXTERNAL_SECRETS,
    FSX_CSI,
    KARPENTER,
    LOAD_BALANCER_CONTROLLER,
    check_event_rules,
    check_policy,
    check_templates,
    controller_statements,
    karpenter_reference,
    references,
)


def _platform(synth) -> dict:  # type: ignore[no-untyped-def]
    return synth.template("Platform")


def _actions(statement: dict) -> list[str]:
    a = statement["Action"]
    return [a] if isinstance(a, str) else list(a)


def test_every_controller_policy_of_every_profile_meets_its_reference(any_synth) -> None:
    assert check_templates(any_synth.templates) == []


def test_the_gate_sees_all_five_controllers_of_production(production_synth) -> None:
    found = controller_statements(_platform(production_synth))
    assert set(found) == {KARPENTER, LOAD_BALANCER_CONTROLLER, EFS_CSI, FSX_CSI, EXTERNAL_SECRETS}
    assert all(found.values())


def test_references_are_read_from_the_vendored_files() -> None:
    refs = references()
    assert "ec2:DescribeInstanceStatus" in refs[KARPENTER].actions
    assert "elasticloadbalancing:SetRulePriorities" in refs[LOAD_BALANCER_CONTROLLER].actions
    assert "elasticfilesystem:CreateAccessPoint" in refs[EFS_CSI].actions
    assert "fsx:CreateFileSystem" in refs[FSX_CSI].actions
    assert len(karpenter_reference()[1]) == 5


def test_a_policy_missing_an_action_fails(production_synth) -> None:
    statements = copy.deepcopy(controller_statements(_platform(production_synth))[KARPENTER])
    for s in statements:
        s["Action"] = [a for a in _actions(s) if a != "ec2:DescribeInstanceStatus"]
    assert check_policy(KARPENTER, statements) == [
        "karpenter: ec2:DescribeInstanceStatus (in third_party/karpenter-1.14.1/cloudformation.yaml) is not "
        "granted -- fix: grant it, or list it in EXCLUSIONS with the feature its absence turns off"
    ]


def test_an_action_missing_on_a_resource_type_the_reference_grants_fails(production_synth) -> None:
    statements = copy.deepcopy(controller_statements(_platform(production_synth))[LOAD_BALANCER_CONTROLLER])
    for s in statements:
        if "elasticloadbalancing:AddTags" in _actions(s):
            s["Resource"] = [r for r in s["Resource"] if ":listener/" not in r]
    problems = check_policy(LOAD_BALANCER_CONTROLLER, statements)
    assert len(problems) == 2  # AddTags and RemoveTags (granted together) both lost listeners
    assert "elasticloadbalancing:AddTags is not granted on elasticloadbalancing:listener resources" in problems[0]
    assert "fix: add those ARNs" in problems[0]


def test_a_narrower_list_of_services_to_pass_the_role_to_fails(production_synth) -> None:
    statements = copy.deepcopy(controller_statements(_platform(production_synth))[KARPENTER])
    passing = next(s for s in statements if s.get("Sid") == "AllowPassingInstanceRole")
    passing["Condition"]["StringEquals"]["iam:PassedToService"] = "ec2.amazonaws.com"
    assert check_policy(KARPENTER, statements) == [
        "karpenter: iam:PassRole allows iam:PassedToService ['ec2.amazonaws.com'], the reference "
        "['ec2.amazonaws.com', 'ec2.amazonaws.com.cn'] -- fix: add ['ec2.amazonaws.com.cn']"
    ]


def test_an_exclusion_of_an_action_that_is_granted_fails(production_synth) -> None:
    statements = controller_statements(_platform(production_synth))[FSX_CSI]
    granted = [*statements, {"Effect": "Allow", "Action": "fsx:CreateFileSystem", "Resource": "*"}]
    problems = check_policy(FSX_CSI, granted)
    assert len(problems) == 1 and "fsx:CreateFileSystem is granted but listed in EXCLUSIONS" in problems[0]


def test_every_exclusion_names_the_feature_it_turns_off() -> None:
    for controller, actions in EXCLUSIONS.items():
        assert set(actions) <= references()[controller].actions, controller
        assert all(len(reason) > 30 for reason in actions.values()), controller


@pytest.mark.parametrize("change", ["drop", "extra"])
def test_karpenter_rules_must_equal_the_reference_set(default_synth, change: str) -> None:
    template = copy.deepcopy(_platform(default_synth))
    rules = {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::Events::Rule"}
    assert check_event_rules(template) == []
    name, rule = next((k, r) for k, r in rules.items() if "Capacity Reservation" in str(r))
    if change == "drop":
        del template["Resources"][name]
        expected = "no EventBridge rule for aws.ec2 'EC2 Capacity Reservation Instance Interruption Warning'"
    else:
        extra = copy.deepcopy(rule)
        extra["Properties"]["EventPattern"]["detail-type"] = ["EC2 Fast Snapshot Restore Event"]
        template["Resources"]["Extra"] = extra
        expected = "EventBridge rule for aws.ec2 'EC2 Fast Snapshot Restore Event' is not in the reference"
    (problem,) = check_event_rules(template)
    assert expected in problem and "fix:" in problem


# -- what the contract does not see by action name alone ----------------------------------------------
def test_lbc_mutations_of_listeners_rules_and_targets_need_this_clusters_tag(production_synth) -> None:
    template = _platform(production_synth)
    cluster = {"Ref": next(k for k, r in template["Resources"].items() if r["Type"] == "AWS::EKS::Cluster")}
    scoped = (
        "elasticloadbalancing:DeleteListener",
        "elasticloadbalancing:ModifyListener",
        "elasticloadbalancing:DeleteRule",
        "elasticloadbalancing:ModifyRule",
        "elasticloadbalancing:SetRulePriorities",
        "elasticloadbalancing:RegisterTargets",
        "elasticloadbalancing:DeregisterTargets",
        "elasticloadbalancing:ModifyTargetGroup",
        "elasticloadbalancing:SetWebAcl",
        "elasticloadbalancing:CreateListener",
        "elasticloadbalancing:CreateRule",
    )
    policy = next(r for k, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Policy" and "Lbc" in k)
    for action in scoped:
        granting = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if action in _actions(s)]
        assert granting, action
        for s in granting:
            assert s["Resource"] != "*", action
            tags = {k: v for block in s["Condition"].values() for k, v in block.items()}
            assert cluster in (
                tags.get("aws:ResourceTag/elbv2.k8s.aws/cluster"),
                tags.get("aws:RequestTag/elbv2.k8s.aws/cluster"),
            ), (action, s["Condition"])


def test_lbc_may_open_node_and_cluster_security_groups_of_its_vpc_only(production_synth) -> None:
    statements = controller_statements(_platform(production_synth))[LOAD_BALANCER_CONTROLLER]
    ingress = [
        s
        for s in statements
        if "ec2:AuthorizeSecurityGroupIngress" in _actions(s) and "ec2:Vpc" in str(s.get("Condition"))
    ]
    (s,) = ingress
    vpc = s["Condition"]["StringEquals"]["ec2:Vpc"]
    assert vpc.startswith("arn:aws:ec2:us-east-1:") and ":vpc/${import:LlmProd-Network:" in vpc


def test_lbc_acknowledgements_say_what_the_policy_does() -> None:
    reasons = lbc_acknowledgements("aws")
    # The old reason claimed tag-scoped target registration while registration was unconditioned.
    target_groups = reasons["AwsSolutions-IAM5[Resource::arn:aws:elasticloadbalancing:*:*:targetgroup/*/*]"]
    assert "target registration and tag change needs elbv2.k8s.aws/cluster naming this cluster" in target_groups
    assert "WAF/Shield" in reasons["AwsSolutions-IAM5[Resource::*]"]
    assert any("listener-rule/app" in rule for rule in reasons)


def test_efs_access_points_can_be_created_with_their_tags(production_synth) -> None:
    statements = controller_statements(_platform(production_synth))[EFS_CSI]
    on_create = [
        s
        for s in statements
        if "elasticfilesystem:TagResource" in _actions(s) and "aws:RequestTag/efs.csi.aws.com/cluster" in str(s)
    ]
    (tagging,) = on_create
    assert all(":access-point/*" in r for r in [tagging["Resource"]] if isinstance(r, str)) or any(
        ":access-point/*" in r for r in tagging["Resource"]
    )
    create = next(s for s in statements if "elasticfilesystem:CreateAccessPoint" in _actions(s))
    resources = create["Resource"] if isinstance(create["Resource"], list) else [create["Resource"]]
    assert any(":access-point/*" in str(r) for r in resources)
