"""The EKS cluster: version, encryption, logs, endpoint, access entries, add-ons, system nodes."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from eks_llm_stack import versions
from eks_llm_stack.constructs.cluster import LlmClusterProps
from eks_llm_stack.errors import ConfigError


@pytest.fixture(scope="module")
def platform(production_synth) -> Template:
    return Template.from_json(production_synth.template("Platform"))


def test_cluster_runs_the_pinned_kubernetes_version(platform: Template) -> None:
    platform.has_resource_properties("AWS::EKS::Cluster", {"Version": versions.KUBERNETES_VERSION})


def test_kubectl_layer_matches_the_kubernetes_version(production_synth) -> None:
    text = json.dumps(production_synth.template("Platform"))
    assert "kubectl v1.35" in text or "KubectlV35Layer" in text or "KubectlLayer" in text
    layers = Template.from_json(production_synth.template("Platform")).find_resources("AWS::Lambda::LayerVersion")
    assert any("kubectl" in json.dumps(v).lower() for v in layers.values())


def test_secrets_are_envelope_encrypted_with_a_rotating_customer_key(platform: Template) -> None:
    platform.has_resource_properties(
        "AWS::EKS::Cluster",
        {"EncryptionConfig": [{"Provider": {"KeyArn": Match.any_value()}, "Resources": ["secrets"]}]},
    )
    platform.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_all_control_plane_log_types_are_on(platform: Template) -> None:
    clusters = platform.find_resources("AWS::EKS::Cluster")
    (cluster,) = clusters.values()
    types = {t["Type"] for t in cluster["Properties"]["Logging"]["ClusterLogging"]["EnabledTypes"]}
    assert types == {"api", "audit", "authenticator", "controllerManager", "scheduler"}


def test_endpoint_is_public_and_private_with_the_profile_allow_list(platform: Template) -> None:
    platform.has_resource_properties(
        "AWS::EKS::Cluster",
        {
            "ResourcesVpcConfig": Match.object_like(
                {"EndpointPublicAccess": True, "EndpointPrivateAccess": True, "PublicAccessCidrs": ["203.0.113.0/24"]}
            ),
            "AccessConfig": Match.object_like({"AuthenticationMode": "API"}),
        },
    )


def test_admins_get_cluster_admin_through_access_entries(platform: Template) -> None:
    entries = platform.find_resources(
        "AWS::EKS::AccessEntry", {"Properties": {"PrincipalArn": "arn:aws:iam::123456789012:role/platform-admins"}}
    )
    (entry,) = entries.values()
    (policy,) = entry["Properties"]["AccessPolicies"]
    assert policy["AccessScope"] == {"Type": "cluster"}
    assert "AmazonEKSClusterAdminPolicy" in json.dumps(policy["PolicyArn"])


def test_managed_addons_are_installed(platform: Template) -> None:
    names = {a["Properties"]["AddonName"] for a in platform.find_resources("AWS::EKS::Addon").values()}
    base = {"vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent", "aws-ebs-csi-driver", "metrics-server"}
    # The storage CSI drivers come on top when the profile has FSx / EFS.
    assert names == base | {"aws-efs-csi-driver", "aws-fsx-csi-driver"}


def test_vpc_cni_uses_prefix_delegation(platform: Template) -> None:
    (cni,) = platform.find_resources("AWS::EKS::Addon", {"Properties": {"AddonName": "vpc-cni"}}).values()
    assert json.loads(cni["Properties"]["ConfigurationValues"])["env"]["ENABLE_PREFIX_DELEGATION"] == "true"


def test_ebs_csi_driver_gets_its_own_pod_identity_role(platform: Template) -> None:
    platform.has_resource_properties(
        "AWS::EKS::Addon",
        {
            "AddonName": "aws-ebs-csi-driver",
            "PodIdentityAssociations": [{"ServiceAccount": "ebs-csi-controller-sa", "RoleArn": Match.any_value()}],
        },
    )
    platform.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": Match.object_like(
                {
                    "Statement": Match.array_with(
                        [Match.object_like({"Principal": {"Service": "pods.eks.amazonaws.com"}})]
                    )
                }
            )
        },
    )


def test_system_node_group_is_small_on_demand_al2023_and_tainted(platform: Template) -> None:
    platform.has_resource_properties(
        "AWS::EKS::Nodegroup",
        {
            "AmiType": "AL2023_x86_64_STANDARD",
            "CapacityType": "ON_DEMAND",
            "ScalingConfig": {"DesiredSize": 3, "MinSize": 3, "MaxSize": 6},
            "Taints": [{"Effect": "NO_SCHEDULE", "Key": "CriticalAddonsOnly", "Value": "true"}],
            "Labels": {"eks-llm-stack.io/system": "true"},
        },
    )


def test_default_profile_system_nodes_are_two(default_synth) -> None:
    Template.from_json(default_synth.template("Platform")).has_resource_properties(
        "AWS::EKS::Nodegroup", {"ScalingConfig": {"DesiredSize": 2, "MinSize": 2, "MaxSize": 4}}
    )


def test_nodes_require_imdsv2_with_one_hop_and_encrypted_disks(platform: Template) -> None:
    platform.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {
            "LaunchTemplateData": Match.object_like(
                {
                    "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1},
                    "BlockDeviceMappings": [
                        {"DeviceName": "/dev/xvda", "Ebs": Match.object_like({"Encrypted": True, "VolumeType": "gp3"})}
                    ],
                }
            )
        },
    )


def test_private_only_endpoint(cdk_context) -> None:
    from eks_llm_stack.config import validate_profile
    from eks_llm_stack.synth import build

    profile = validate_profile({"cluster": {"endpoint": {"public": False, "private": True}}})
    built = build(profile, context=cdk_context)
    t = Template.from_stack(built.platform.platform)
    t.has_resource_properties(
        "AWS::EKS::Cluster",
        {"ResourcesVpcConfig": Match.object_like({"EndpointPublicAccess": False, "EndpointPrivateAccess": True})},
    )


def test_cluster_props_report_every_problem() -> None:
    from aws_cdk import App, Stack
    from aws_cdk import aws_ec2 as ec2

    vpc = ec2.Vpc(Stack(App(), "T"), "V")
    with pytest.raises(ConfigError) as err:
        LlmClusterProps(
            cluster_name="c",
            vpc=vpc,
            subnets=ec2.SubnetSelection(),
            kubernetes_version="1.20",
            public_cidrs=("nope",),
            system_min=3,
            system_desired=1,
            addon_versions={"istio": "1"},
        )
    text = str(err.value)
    assert "kubernetes_version: no kubectl layer is pinned for this version (got '1.20')" in text
    assert "public_cidrs: 'nope' is not a CIDR block" in text
    assert "system_desired: must lie between system_min (3) and system_max (4)" in text
    assert "addon_versions: not add-ons this cluster installs" in text


def test_ebs_volumes_and_gpu_nodes_carry_the_environment_tags(cdk_context) -> None:
    """Teardown of an ephemeral environment finds what CloudFormation did not create by these tags."""
    from aws_cdk import App

    from eks_llm_stack.synth import build

    app = App(context={**cdk_context, "name": "ci-7", "expires_at": "2026-11-21T18:00:00Z"})
    built = build("ci-ephemeral", app=app)
    t = Template.from_stack(built.platform.platform)
    (ebs,) = t.find_resources("AWS::EKS::Addon", {"Properties": {"AddonName": "aws-ebs-csi-driver"}}).values()
    tags = json.loads(ebs["Properties"]["ConfigurationValues"])["controller"]["extraVolumeTags"]
    assert tags["eks-llm-stack:ephemeral"] == "true"
    assert tags["eks-llm-stack:expires-at"] == "2026-11-21T18:00:00Z"
    assert tags["eks-llm-stack:name"] == "ci-7"
    node_class = next(
        d for _, chart, _ in built.platform.charts.entries for d in chart.to_json() if d["kind"] == "EC2NodeClass"
    )
    assert node_class["spec"]["tags"]["eks-llm-stack:ephemeral"] == "true"
    assert node_class["spec"]["tags"]["eks-llm-stack.io/pool"] == "ci-gpu"
