"""Placement groups: created, wired into the EC2NodeClass by name, and pinned to one AZ."""

from __future__ import annotations

import json

import pytest
from gpu_fixtures import GpuStack, build

from eks_llm_stack.config.compute import PlacementGroupSpec
from eks_llm_stack.constructs.gpu_node_pool import GpuNodePoolProps
from eks_llm_stack.conventions import ZONE_LABEL
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.gates.manifests import validate_manifests


@pytest.fixture(scope="module")
def built() -> GpuStack:
    return build((("Train", GpuNodePoolProps.training()),), subnets=lambda vpc: vpc.private_subnets[:1])


def test_a_cluster_placement_group_is_created(built: GpuStack) -> None:
    built.template().has_resource_properties("AWS::EC2::PlacementGroup", {"Strategy": "cluster"})


def test_its_name_appears_in_the_ec2nodeclass(built: GpuStack) -> None:
    template = built.template()
    (pg_id,) = template.find_resources("AWS::EC2::PlacementGroup")
    manifest = next(
        m
        for m in template.find_resources("Custom::AWSCDK-EKS-KubernetesResource").values()
        if "EC2NodeClass" in json.dumps(m["Properties"]["Manifest"])
    )
    assert {"Fn::GetAtt": [pg_id, "GroupName"]} in manifest["Properties"]["Manifest"]["Fn::Join"][1]
    assert built.doc("Train", "EC2NodeClass")["spec"]["placementGroupSelector"] == {"name": f"${{{pg_id}.GroupName}}"}


def test_the_pool_is_narrowed_to_the_subnets_zone(built: GpuStack) -> None:
    subnet = built.vpc.private_subnets[0]
    spec = built.doc("Train", "EC2NodeClass")["spec"]
    assert len(spec["subnetSelectorTerms"]) == 1
    reqs = built.doc("Train", "NodePool")["spec"]["template"]["spec"]["requirements"]
    assert {"key": ZONE_LABEL, "operator": "In", "values": [subnet.availability_zone]} in reqs


def test_efa_security_group_allows_all_traffic_between_members(built: GpuStack) -> None:
    template = built.template()
    sg_id = next(
        k
        for k, v in template.find_resources("AWS::EC2::SecurityGroup").items()
        if "EFA" in v["Properties"]["GroupDescription"]
    )
    template.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {
            "IpProtocol": "-1",
            "GroupId": {"Fn::GetAtt": [sg_id, "GroupId"]},
            "SourceSecurityGroupId": {"Fn::GetAtt": [sg_id, "GroupId"]},
        },
    )
    template.has_resource_properties(
        "AWS::EC2::SecurityGroupEgress",
        {
            "IpProtocol": "-1",
            "GroupId": {"Fn::GetAtt": [sg_id, "GroupId"]},
            "DestinationSecurityGroupId": {"Fn::GetAtt": [sg_id, "GroupId"]},
        },
    )


def test_training_manifests_validate(built: GpuStack) -> None:
    assert validate_manifests(built.docs("Train")) == []


def test_subnets_in_several_zones_are_an_error() -> None:
    with pytest.raises(
        ConfigError,
        match=r"(?s)availability_zone: a placement group lives in one availability zone"
        r".*us-east-1a, us-east-1b.*fix: set availability_zone",
    ):
        build((("Train", GpuNodePoolProps.training()),), subnets=lambda vpc: vpc.private_subnets)


def test_a_chosen_zone_narrows_subnets_of_several_zones() -> None:
    stack = build(
        (("Train", GpuNodePoolProps.training(availability_zone="us-east-1b")),), subnets=lambda vpc: vpc.private_subnets
    )
    assert [s.availability_zone for s in stack.pools["Train"].subnets] == ["us-east-1b"]


def test_partitions_only_with_the_partition_strategy() -> None:
    with pytest.raises(
        ConfigError,
        match=r"(?s)placement_group\.partitions: only applies to the partition strategy.*fix: remove partitions",
    ):
        GpuNodePoolProps.training(placement_group=PlacementGroupSpec(strategy="cluster", partitions=3))
