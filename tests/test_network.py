"""The Network stack: a new VPC across three zones, or an imported one, with no lookups."""

from __future__ import annotations

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Match, Template

from eks_llm_stack.constructs.network import ClusterNetwork, ClusterNetworkProps
from eks_llm_stack.errors import ConfigError


def test_new_vpc_has_three_private_subnets_tagged_for_karpenter(default_synth) -> None:
    t = Template.from_json(default_synth.template("Network"))
    t.resource_count_is("AWS::EC2::VPC", 1)
    private = t.find_resources(
        "AWS::EC2::Subnet",
        {"Properties": {"Tags": Match.array_with([{"Key": "karpenter.sh/discovery", "Value": "llm-cluster"}])}},
    )
    assert len(private) == 3


def test_environment_agnostic_vpc_spans_three_zones_without_lookups(default_synth) -> None:
    subnets = Template.from_json(default_synth.template("Network")).find_resources("AWS::EC2::Subnet")
    zones = {str(s["Properties"]["AvailabilityZone"]) for s in subnets.values()}
    assert len(zones) == 3
    assert all("Fn::GetAZs" in z for z in zones)


def test_production_profile_spans_three_zones_and_adds_endpoints(production_synth) -> None:
    t = Template.from_json(production_synth.template("Network"))
    zones = {str(s["Properties"]["AvailabilityZone"]) for s in t.find_resources("AWS::EC2::Subnet").values()}
    assert len(zones) == 3
    t.resource_count_is("AWS::EC2::NatGateway", 3)
    t.has_resource_properties(
        "AWS::EC2::VPCEndpoint", {"ServiceName": Match.string_like_regexp("sts"), "PrivateDnsEnabled": True}
    )
    t.has_resource_properties("AWS::EC2::VPCEndpoint", {"VpcEndpointType": "Gateway"})


def test_flow_logs_on_by_default_and_off_in_ci(default_synth, ephemeral_synth) -> None:
    Template.from_json(default_synth.template("Network")).resource_count_is("AWS::EC2::FlowLog", 1)
    Template.from_json(ephemeral_synth.template("Network")).resource_count_is("AWS::EC2::FlowLog", 0)


def test_pinned_zones_are_used_as_given(cdk_context) -> None:
    from aws_cdk import App

    from eks_llm_stack.config import validate_profile
    from eks_llm_stack.synth import build

    profile = validate_profile({"network": {"availability_zones": ["eu-west-1a", "eu-west-1b"]}})
    built = build(profile, app=App(context=cdk_context))
    t = Template.from_stack(built.platform.network)
    t.has_resource_properties("AWS::EC2::Subnet", {"AvailabilityZone": "eu-west-1b"})
    assert len(t.find_resources("AWS::EC2::Subnet")) == 4


def test_imported_vpc_creates_no_vpc() -> None:
    stack = Stack(App(), "T")
    net = ClusterNetwork(
        stack,
        "Net",
        props=ClusterNetworkProps(
            cluster_name="c",
            vpc_id="vpc-0abc",
            private_subnet_ids=("subnet-1", "subnet-2"),
            availability_zones=("a", "b"),
        ),
    )
    assert net.vpc.vpc_id == "vpc-0abc"
    Template.from_stack(stack).resource_count_is("AWS::EC2::VPC", 0)


def test_props_report_every_problem() -> None:
    with pytest.raises(ConfigError) as err:
        ClusterNetworkProps(cluster_name="c", vpc_id="vpc-1", endpoints=("s3", "dynamo"), nat_gateways=4, max_azs=3)
    text = str(err.value)
    assert "endpoints: unknown endpoint names (got ['dynamo'])" in text
    assert "private_subnet_ids: an imported VPC needs two or more private subnets" in text
    assert "nat_gateways: more NAT gateways than zones (3)" in text
