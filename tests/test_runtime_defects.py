"""Runtime defects found by checking against the pinned upstream parts: each test would have caught one."""

from __future__ import annotations

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk.assertions import Template
from aws_cdk.lambda_layer_kubectl_v35 import KubectlV35Layer

from eks_llm_stack.config.compute import GpuSharing
from eks_llm_stack.constructs.cluster import ADDON_RESOLVE_CONFLICTS, DEFAULT_ADDONS
from eks_llm_stack.constructs.device_plugins import (
    EKS_REGISTRY_DEFAULT_REGIONS,
    DevicePluginsProps,
    GpuDevicePlugins,
    eks_addon_registry_account,
)
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.gates.helm_values import helm_releases


# -- managed add-ons vs. what EKS bootstraps --------------------------------------------------------
def test_every_managed_addon_overwrites_what_eks_bootstrapped(any_synth) -> None:
    addons = {
        r["Properties"]["AddonName"]: r["Properties"]
        for t in any_synth.templates.values()
        for r in t["Resources"].values()
        if r["Type"] == "AWS::EKS::Addon"
    }
    assert {"vpc-cni", "coredns", "kube-proxy"} <= set(addons)
    for name in DEFAULT_ADDONS:
        assert addons[name].get("ResolveConflicts") == ADDON_RESOLVE_CONFLICTS == "OVERWRITE", name


# -- EFA device plugin image from the cluster's own region --------------------------------------------
def test_production_pulls_the_efa_plugin_from_its_own_region(production_synth) -> None:
    (efa,) = [r for r in helm_releases(production_synth.templates) if r.chart == "aws-efa-k8s-device-plugin"]
    region = production_synth.profile.region
    assert efa.values["image"]["repository"] == (
        f"602401143452.dkr.ecr.{region}.amazonaws.com/eks/aws-efa-k8s-device-plugin"
    )


def _plugins(region: str | None) -> Stack:
    app = App()
    env = Environment(account="123456789012", region=region) if region else None
    stack = Stack(app, "Plugins", env=env)
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=1)
    cluster = eks.Cluster(
        stack,
        "Cluster",
        version=eks.KubernetesVersion.V1_35,
        vpc=vpc,
        default_capacity=0,
        default_capacity_type=eks.DefaultCapacityType.NODEGROUP,
        kubectl_provider_options=eks.KubectlProviderOptions(kubectl_layer=KubectlV35Layer(stack, "Kubectl")),
    )
    GpuDevicePlugins(stack, "Plugins", cluster=cluster, props=DevicePluginsProps(efa=True))
    return stack


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("af-south-1", "877085696533.dkr.ecr.af-south-1.amazonaws.com/eks/aws-efa-k8s-device-plugin"),
        ("cn-north-1", "918309763551.dkr.ecr.cn-north-1.amazonaws.com.cn/eks/aws-efa-k8s-device-plugin"),
    ],
)
def test_efa_plugin_registry_follows_region_and_partition(region: str, expected: str) -> None:
    template = Template.from_stack(_plugins(region)).to_json()
    (values,) = [
        r["Properties"]["Values"]
        for r in template["Resources"].values()
        if r["Type"] == "Custom::AWSCDK-EKS-HelmChart" and r["Properties"]["Chart"] == "aws-efa-k8s-device-plugin"
    ]
    assert expected in str(values)
    assert "us-west-2" not in str(values)


def test_an_environment_agnostic_stack_maps_every_region_at_deploy_time() -> None:
    template = Template.from_stack(_plugins(None)).to_json()
    (mapping,) = template["Mappings"].values()
    assert mapping["eu-south-2"] == {"account": "455263428931"}
    assert set(EKS_REGISTRY_DEFAULT_REGIONS) <= set(mapping)
    assert "Fn::FindInMap" in str(template["Resources"])
    assert eks_addon_registry_account("us-east-1") == "602401143452"


# -- MIG ---------------------------------------------------------------------------------------------
def test_mig_is_refused_at_synth_time_with_the_fix() -> None:
    with pytest.raises(ConfigError) as err:
        DevicePluginsProps(pool_sharing={"a100": GpuSharing(mig_strategy="single")})
    text = str(err.value)
    assert "pool_sharing.a100.mig_strategy" in text and "single" in text
    assert "MIG partitions are not created by this library" in text
    assert "fix: use mig_strategy: none" in text


def test_time_slicing_is_still_accepted() -> None:
    assert DevicePluginsProps(default_sharing=GpuSharing(time_slicing_replicas=4)).default_sharing.is_default is False


def test_mig_in_a_profile_pool_is_refused_by_profile_validation_with_the_profile_field() -> None:
    # The device plugins' own refusal names DevicePluginsProps fields; a profile user must see theirs,
    # from `profile validate` already (not only at synth).
    from eks_llm_stack.config import validate_profile

    pool = {"name": "mig", "preset": "inference", "families": ["p5"], "device_plugin": {"mig_strategy": "mixed"}}
    with pytest.raises(ConfigError) as err:
        validate_profile({"compute": {"pools": [pool]}})
    text = str(err.value)
    assert "compute.pools[0].device_plugin.mig_strategy: MIG partitions are not created by this library" in text
    assert "(got 'mixed')" in text and "fix: use mig_strategy: none" in text
