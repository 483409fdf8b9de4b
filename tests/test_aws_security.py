"""AWS side of the secure defaults: API endpoint, admin bootstrap, node roles, Pod Identity trust, logs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_eks as eks_l1

from eks_llm_stack.config import validate_profile
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.gates.nag import CONTROL_PLANE_LOG_TYPES, nag_report


def _resources(synth: Any, kind: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (stack, lid, r)
        for stack, t in synth.templates.items()
        for lid, r in t["Resources"].items()
        if r["Type"] == kind
    ]


def _cluster(synth: Any) -> dict[str, Any]:
    [(_, _, cluster)] = _resources(synth, "AWS::EKS::Cluster")
    return cluster


# -- API endpoint and admin bootstrap --------------------------------------------------------------


def test_default_and_ci_profiles_keep_the_api_private(default_synth, ephemeral_synth) -> None:
    for synth in (default_synth, ephemeral_synth):
        vpc_config = _cluster(synth)["Properties"]["ResourcesVpcConfig"]
        assert vpc_config["EndpointPublicAccess"] is False
        assert vpc_config["EndpointPrivateAccess"] is True


def test_production_public_endpoint_is_limited_to_its_cidrs(production_synth) -> None:
    vpc_config = _cluster(production_synth)["Properties"]["ResourcesVpcConfig"]
    assert vpc_config["EndpointPublicAccess"] is True
    assert vpc_config["PublicAccessCidrs"] == ["203.0.113.0/24"]


def test_no_profile_bootstraps_the_cluster_creator_as_admin(any_synth) -> None:
    access = _cluster(any_synth)["Properties"]["AccessConfig"]
    assert access["BootstrapClusterCreatorAdminPermissions"] is False
    # The kubectl provider's admin path: its own access entry with the cluster-admin policy.
    entries = [r for _, lid, r in _resources(any_synth, "AWS::EKS::AccessEntry") if "ClusterAdminRoleAccess" in lid]
    assert len(entries) == 1
    policies = entries[0]["Properties"]["AccessPolicies"]
    assert "cluster-access-policy/AmazonEKSClusterAdminPolicy" in json.dumps(policies)
    assert "KubectlProviderHandler" in json.dumps(entries[0]["Properties"]["PrincipalArn"])


def _profile(endpoint: dict[str, Any]) -> Any:
    return validate_profile({"cluster": {"endpoint": endpoint}})


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ({"public": True}, ["cluster.endpoint", "public: true needs public_cidrs", "public_cidrs: [203.0.113.0/24]"]),
        (
            {"public": True, "public_cidrs": ["0.0.0.0/0"]},
            ["opens the Kubernetes API to the whole internet", "allow_public_internet: true"],
        ),
        ({"runner_cidrs": ["0.0.0.0/0"]}, ["opens the Kubernetes API to the whole internet"]),
        ({"public_cidrs": ["203.0.113.0/24"]}, ["public endpoint is off", "set public: true"]),
        ({"public": True, "public_cidrs": ["203.0.113.7"]}, ["public_cidrs", "is a bare IP address", "203.0.113.7/32"]),
    ],
)
def test_an_open_or_unbounded_public_endpoint_is_refused(endpoint: dict[str, Any], expected: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        _profile(endpoint)
    text = str(err.value)
    for part in expected:
        assert part in text, text


def test_runner_cidrs_open_the_public_endpoint_for_those_blocks_only() -> None:
    e = _profile({"runner_cidrs": ["198.51.100.7/32"]}).cluster.endpoint
    assert e.public_enabled and e.allowed_cidrs == ("198.51.100.7/32",)
    e = _profile({"public": True, "public_cidrs": ["0.0.0.0/0"], "allow_public_internet": True}).cluster.endpoint
    assert e.allowed_cidrs == ("0.0.0.0/0",)


def test_runner_cidrs_come_from_the_cdk_context() -> None:
    from eks_llm_stack.synth import resolve_profile

    p = resolve_profile("ci-ephemeral", name_override="ci-42", runner_cidrs="198.51.100.7/32, 192.0.2.0/28")
    assert p.cluster.endpoint.allowed_cidrs == ("198.51.100.7/32", "192.0.2.0/28")
    assert p.prefix == "ci-42"


# -- our cdk-nag rules for AWS::EKS::Cluster -------------------------------------------------------


def _bare_cluster(public: bool | None, cidrs: list[str] | None, logs: tuple[str, ...]) -> Stack:
    stack = Stack(App(), "S")
    vpc_config: dict[str, Any] = {"subnet_ids": ["subnet-1", "subnet-2"]}
    if public is not None:
        vpc_config["endpoint_public_access"] = public
    if cidrs is not None:
        vpc_config["public_access_cidrs"] = cidrs
    eks_l1.CfnCluster(
        stack,
        "Cluster",
        role_arn="arn:aws:iam::123456789012:role/eks",
        resources_vpc_config=eks_l1.CfnCluster.ResourcesVpcConfigProperty(**vpc_config),
        logging=eks_l1.CfnCluster.LoggingProperty(
            cluster_logging=eks_l1.CfnCluster.ClusterLoggingProperty(
                enabled_types=[eks_l1.CfnCluster.LoggingTypeConfigProperty(type=t) for t in logs]
            )
        ),
    )
    return stack


def _eks_rules(stack: Stack) -> set[str]:
    return {v.rule for v in nag_report(stack) if v.rule.startswith("EksLlmStack-")}


@pytest.mark.parametrize(
    ("public", "cidrs"), [(None, None), (True, None), (True, ["0.0.0.0/0"]), (True, ["10.0.0.0/8", "0.0.0.0/0"])]
)
def test_nag_fails_an_eks_cluster_open_to_the_internet(public: bool | None, cidrs: list[str] | None) -> None:
    assert _eks_rules(_bare_cluster(public, cidrs, CONTROL_PLANE_LOG_TYPES)) == {"EksLlmStack-EKS1"}


def test_nag_fails_an_eks_cluster_without_full_control_plane_logs() -> None:
    assert _eks_rules(_bare_cluster(False, None, ("api", "audit"))) == {"EksLlmStack-EKS2"}
    assert _eks_rules(_bare_cluster(True, ["0.0.0.0/0"], ())) == {"EksLlmStack-EKS1", "EksLlmStack-EKS2"}


def test_nag_passes_a_private_or_restricted_cluster_with_every_log() -> None:
    assert _eks_rules(_bare_cluster(False, None, CONTROL_PLANE_LOG_TYPES)) == set()
    assert _eks_rules(_bare_cluster(True, ["203.0.113.0/24"], CONTROL_PLANE_LOG_TYPES)) == set()


def test_the_platform_cluster_passes_our_eks_rules(production_synth) -> None:
    assert _eks_rules(production_synth.stack("Platform")) == set()


# -- control-plane logs ----------------------------------------------------------------------------


def test_control_plane_log_group_exists_before_the_cluster_with_a_key_and_retention(any_synth) -> None:
    name = f"/aws/eks/{any_synth.profile.cluster_name}/cluster"
    groups = [
        (lid, r)
        for _, lid, r in _resources(any_synth, "AWS::Logs::LogGroup")
        if r["Properties"].get("LogGroupName") == name
    ]
    assert len(groups) == 1
    lid, group = groups[0]
    assert "KmsKeyId" in group["Properties"] and group["Properties"]["RetentionInDays"] == 90
    assert lid in _cluster(any_synth)["DependsOn"]


# -- node roles and the VPC CNI -----------------------------------------------------------------


def _managed_policies(role: dict[str, Any]) -> str:
    return json.dumps(role["Properties"].get("ManagedPolicyArns", []))


def test_no_node_role_carries_cni_ssm_or_ecr_read_only(any_synth) -> None:
    node_roles = [
        (lid, r)
        for _, lid, r in _resources(any_synth, "AWS::IAM::Role")
        if "ec2.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
    ]
    assert len(node_roles) >= 1
    for lid, role in node_roles:
        policies = _managed_policies(role)
        assert "AmazonEKS_CNI_Policy" not in policies, lid
        assert "AmazonSSMManagedInstanceCore" not in policies, lid
        assert "AmazonEC2ContainerRegistryReadOnly" not in policies, lid
        assert "AmazonEC2ContainerRegistryPullOnly" in policies, lid
    assert "AmazonEC2ContainerRegistryReadOnly" not in json.dumps(any_synth.templates)


def test_the_cni_policy_sits_on_the_aws_node_service_account(default_synth) -> None:
    [(_, _, addon)] = [
        x for x in _resources(default_synth, "AWS::EKS::Addon") if x[2]["Properties"]["AddonName"] == "vpc-cni"
    ]
    [assoc] = addon["Properties"]["PodIdentityAssociations"]
    assert assoc["ServiceAccount"] == "aws-node"
    role_id = assoc["RoleArn"]["Fn::GetAtt"][0]
    role = default_synth.template("Platform")["Resources"][role_id]
    assert "AmazonEKS_CNI_Policy" in _managed_policies(role)


# -- Pod Identity trust ------------------------------------------------------------------------------


def _associations(synth: Any) -> dict[str, tuple[str, str]]:
    """Role logical id -> (namespace, service account), from associations and add-ons."""
    out: dict[str, tuple[str, str]] = {}
    for _, _, r in _resources(synth, "AWS::EKS::PodIdentityAssociation"):
        p = r["Properties"]
        out[p["RoleArn"]["Fn::GetAtt"][0]] = (p["Namespace"], p["ServiceAccount"])
    return out


def test_every_pod_identity_role_trusts_one_cluster_namespace_and_service_account(production_synth) -> None:
    roles = [
        (lid, r)
        for _, lid, r in _resources(production_synth, "AWS::IAM::Role")
        if "pods.eks.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
    ]
    assert len(roles) >= 8
    associations = _associations(production_synth)
    for lid, role in roles:
        [statement] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert sorted(statement["Action"]) == ["sts:AssumeRole", "sts:TagSession"], lid
        cond = statement["Condition"]["StringEquals"]
        assert f"cluster/{production_synth.profile.cluster_name}" in json.dumps(
            cond["aws:RequestTag/eks-cluster-arn"]
        ) or "Cluster" in json.dumps(cond["aws:RequestTag/eks-cluster-arn"]), lid
        assert cond["aws:RequestTag/kubernetes-namespace"] and cond["aws:RequestTag/kubernetes-service-account"]
        if lid in associations:
            assert associations[lid] == (
                cond["aws:RequestTag/kubernetes-namespace"],
                cond["aws:RequestTag/kubernetes-service-account"],
            ), lid


def test_external_secrets_decrypts_only_through_secrets_manager(production_synth) -> None:
    policies = [
        r for _, lid, r in _resources(production_synth, "AWS::IAM::Policy") if lid.startswith("ExternalSecrets")
    ]
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    decrypt = [s for s in statements if "kms:Decrypt" in json.dumps(s["Action"])]
    assert decrypt
    for s in decrypt:
        assert s["Condition"]["StringEquals"]["kms:ViaService"] == "secretsmanager.us-east-1.amazonaws.com"
