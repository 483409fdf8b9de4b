"""The IAM policies of docs/ci-ephemeral-clusters.md name real actions (cfn-lint's IAM reference data),
the boundary lets the controllers do what their reference policies need, and the doc matches the workflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from eks_llm_stack.gates.iam import references
from eks_llm_stack.ops.iam_actions import (
    action_problem,
    allows,
    file_problems,
    main,
    markdown_policies,
    policy_problems,
    reference_actions,
)

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ci-ephemeral-clusters.md"
WORKFLOW = yaml.safe_load((ROOT / ".github" / "workflows" / "ephemeral-cluster.yml").read_text())


def policies() -> dict[str, dict[str, Any]]:
    """The doc's policies by their first statement's Sid (the trust policy has none)."""
    return {str(doc["Statement"][0].get("Sid") or "trust"): doc for _, doc in markdown_policies(DOC.read_text())}


def test_the_reference_is_cfn_lints_service_authorization_data() -> None:
    ref = reference_actions()
    assert len(ref) > 300
    assert "assumerolewithwebidentity" in ref["sts"] and "runinstances" in ref["ec2"]


def test_the_doc_shows_the_boundary_the_ci_role_and_its_trust() -> None:
    assert set(policies()) == {"WhatThePlatformCreates", "trust", "DeployThroughTheEphemeralBootstrap"}


def test_every_action_in_the_docs_policies_exists() -> None:
    assert file_problems(DOC) == []
    assert main([str(DOC)]) == 0


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("ec2:DescribeInstancez", "'ec2:DescribeInstancez': ec2 has no action 'DescribeInstancez' (did you mean"),
        ("ecs2:RunInstances", "no AWS service has the prefix 'ecs2' (did you mean 'ecs'?)"),
        ("pods.eks.amazonaws.com:*", "is not an IAM action"),
        ("s3:Get*Nothing", "'s3:Get*Nothing' matches no s3 action"),
        ("cloudformation", "is not an IAM action"),
    ],
)
def test_a_misspelled_action_is_refused(action: str, message: str) -> None:
    problem = action_problem(action)
    assert problem is not None and message in problem


def test_real_actions_and_patterns_pass() -> None:
    for action in ("ec2:*", "ssm:GetParameter*", "eks-auth:AssumeRoleForPodIdentity", "iam:PassRole", "*"):
        assert action_problem(action) is None, action


def test_a_typo_in_a_policy_block_fails_the_file(tmp_path: Path) -> None:
    text = DOC.read_text().replace('"ec2:DescribeVolumes"', '"ec2:DescribeVolume"', 1)
    assert text != DOC.read_text()
    bad = tmp_path / "doc.md"
    bad.write_text(text)
    [line] = file_problems(bad)
    assert "ReadForListAndSweep: 'ec2:DescribeVolume': ec2 has no action 'DescribeVolume'" in line
    assert main([str(bad)]) == 1


def test_not_action_is_checked_too() -> None:
    problems = policy_problems({"Statement": [{"Sid": "X", "Effect": "Deny", "NotAction": ["iam:Pass_Role"]}]}, "p")
    assert [p.statement for p in problems] == ["X"]


def test_the_boundary_allows_every_action_of_the_controllers_reference_policies() -> None:
    """Every role the stacks create carries the boundary: a controller loses what it does not allow."""
    boundary = policies()["WhatThePlatformCreates"]
    missing = {name: sorted(a for a in ref.actions if not allows(boundary, a)) for name, ref in references().items()}
    assert missing == {name: [] for name in references()}


def test_the_boundary_allows_pod_identity_for_the_node_role() -> None:
    assert allows(policies()["WhatThePlatformCreates"], "eks-auth:AssumeRoleForPodIdentity")


def test_the_doc_policies_name_the_workflows_qualifier_and_boundary() -> None:
    env = WORKFLOW["env"]
    boundary_arn = f"arn:aws:iam::123456789012:policy/{env['EKS_LLM_STACK_PERMISSIONS_BOUNDARY']}"
    by_sid = {s["Sid"]: s for s in policies()["WhatThePlatformCreates"]["Statement"]}
    assert by_sid["NoRoleWithoutTheBoundary"]["Condition"]["StringNotEquals"]["iam:PermissionsBoundary"] == boundary_arn
    assert by_sid["BoundaryStays"]["Condition"]["StringEquals"]["iam:PolicyARN"] == boundary_arn
    role = {s["Sid"]: s for s in policies()["DeployThroughTheEphemeralBootstrap"]["Statement"]}
    qualifier = env["EKS_LLM_STACK_BOOTSTRAP_QUALIFIER"]
    assert role["DeployThroughTheEphemeralBootstrap"]["Resource"] == f"arn:aws:iam::123456789012:role/cdk-{qualifier}-*"
    assert role["CloudFormationDeletesWithTheBoundedRole"]["Resource"].startswith(
        f"arn:aws:iam::123456789012:role/cdk-{qualifier}-cfn-exec-role-"
    )
