"""GPU node pools: manifests valid against the Karpenter v1.14.1 CRDs, presets, EFA, bad input."""

from __future__ import annotations

import dataclasses

import pytest
from aws_cdk.assertions import Annotations, Match
from gpu_fixtures import GpuStack, build

from eks_llm_stack.config import validate_profile
from eks_llm_stack.config.compute import Disruption, DisruptionBudget, GpuRequirements, GpuSharing
from eks_llm_stack.constructs.device_plugins import DevicePluginsProps, nvidia_plugin_config
from eks_llm_stack.constructs.gpu_node_pool import EFA_LABEL, GpuNodePoolProps, efa_network_interfaces
from eks_llm_stack.conventions import GPU_RESOURCE, GPU_TAINT_KEY, POOL_LABEL, WORKLOAD_LABEL
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.gates.manifests import validate_manifests

SG = "sg-0123456789abcdef0"


@pytest.fixture(scope="module")
def built() -> GpuStack:
    return build(
        (
            ("Infer", GpuNodePoolProps.inference("inference", weight=50, security_group_ids=(SG,))),
            ("OnDemand", GpuNodePoolProps.inference("inference-od", capacity_types=("on-demand",), weight=10)),
            (
                "ByGpu",
                dataclasses.replace(
                    GpuNodePoolProps.inference("big-memory", families=None),
                    gpu=GpuRequirements(min_memory_gib=40, min_count=8),
                ),
            ),
            (
                "Blocks",
                GpuNodePoolProps.training(
                    "capacity-block",
                    capacity_types=("reserved",),
                    capacity_reservation_ids=("cr-0123456789abcdef0",),
                    placement_group=None,
                ),
            ),
            (
                "Bottle",
                dataclasses.replace(GpuNodePoolProps.inference("bottlerocket"), ami_family="Bottlerocket"),
            ),
        )
    )


def test_every_manifest_validates_against_the_karpenter_crds(built: GpuStack) -> None:
    docs = [d for name in built.pools for d in built.docs(name)]
    assert len(docs) == 2 * len(built.pools)
    assert validate_manifests(docs) == []


def test_pools_have_their_own_names(built: GpuStack) -> None:
    pool = built.doc("Infer", "NodePool")
    assert pool["metadata"]["name"] == "inference"
    assert pool["spec"]["template"]["spec"]["nodeClassRef"]["name"] == "inference"
    assert built.doc("OnDemand", "EC2NodeClass")["metadata"]["name"] == "inference-od"


def test_nodes_are_tainted_and_labelled_for_gpu_workloads(built: GpuStack) -> None:
    template = built.doc("Infer", "NodePool")["spec"]["template"]
    assert template["spec"]["taints"] == [{"key": GPU_TAINT_KEY, "value": "true", "effect": "NoSchedule"}]
    assert template["metadata"]["labels"][POOL_LABEL] == "inference"
    assert template["metadata"]["labels"][WORKLOAD_LABEL] == "inference"


def test_imdsv2_only_with_hop_limit_one_and_encrypted_root(built: GpuStack) -> None:
    spec = built.doc("Infer", "EC2NodeClass")["spec"]
    assert spec["metadataOptions"]["httpTokens"] == "required"
    assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
    (root,) = spec["blockDeviceMappings"]
    assert root["rootVolume"] is True and root["ebs"]["encrypted"] is True


def test_inference_preset_freezes_disruption_in_business_hours(built: GpuStack) -> None:
    disruption = built.doc("Infer", "NodePool")["spec"]["disruption"]
    assert disruption["consolidationPolicy"] == "WhenEmptyOrUnderutilized"
    assert {"nodes": "0", "schedule": "0 9 * * mon-fri", "duration": "8h"} in disruption["budgets"]


def test_spot_pool_sits_in_front_of_the_on_demand_fallback(built: GpuStack) -> None:
    spot, fallback = built.doc("Infer", "NodePool")["spec"], built.doc("OnDemand", "NodePool")["spec"]
    assert spot["weight"] > fallback["weight"]
    capacity = {r["key"]: r["values"] for r in fallback["template"]["spec"]["requirements"]}[
        "karpenter.sh/capacity-type"
    ]
    assert capacity == ["on-demand"]


def test_gpu_limits_are_set(built: GpuStack) -> None:
    assert built.doc("Infer", "NodePool")["spec"]["limits"] == {GPU_RESOURCE: "16"}


def test_extra_security_groups_are_selected_with_the_cluster_group(built: GpuStack) -> None:
    terms = built.doc("Infer", "EC2NodeClass")["spec"]["securityGroupSelectorTerms"]
    assert {"id": SG} in terms
    assert any("aws:eks:cluster-name" in t.get("tags", {}) for t in terms)


def test_gpu_requirements_become_karpenter_label_requirements(built: GpuStack) -> None:
    reqs = built.doc("ByGpu", "NodePool")["spec"]["template"]["spec"]["requirements"]
    assert {"key": "karpenter.k8s.aws/instance-gpu-memory", "operator": "Gte", "values": ["40960"]} in reqs
    assert {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Gte", "values": ["8"]} in reqs
    families = next(r for r in reqs if r["key"] == "karpenter.k8s.aws/instance-family")["values"]
    assert families == ["g6e", "g7e", "p4d", "p4de", "p5", "p5e", "p5en", "p6-b200", "p6-b300"]


def test_capacity_block_pool_selects_its_reservation(built: GpuStack) -> None:
    spec = built.doc("Blocks", "EC2NodeClass")["spec"]
    assert spec["capacityReservationSelectorTerms"] == [{"id": "cr-0123456789abcdef0"}]
    reqs = built.doc("Blocks", "NodePool")["spec"]["template"]["spec"]["requirements"]
    assert {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["reserved"]} in reqs


def test_bottlerocket_uses_its_alias_and_a_data_volume(built: GpuStack) -> None:
    spec = built.doc("Bottle", "EC2NodeClass")["spec"]
    assert spec["amiSelectorTerms"] == [{"alias": "bottlerocket@latest"}]
    assert [b["deviceName"] for b in spec["blockDeviceMappings"]] == ["/dev/xvda", "/dev/xvdb"]
    assert all(b["ebs"]["encrypted"] for b in spec["blockDeviceMappings"])


def test_manifests_wait_for_the_karpenter_chart(built: GpuStack) -> None:
    template = built.template()
    chart_id = next(
        iter(template.find_resources("Custom::AWSCDK-EKS-HelmChart", {"Properties": {"Release": "karpenter"}}))
    )
    manifests = template.find_resources("Custom::AWSCDK-EKS-KubernetesResource")
    assert manifests and all(chart_id in m.get("DependsOn", []) for m in manifests.values())


# -- EFA ----------------------------------------------------------------------------------


def test_efa_interfaces_follow_the_network_cards_of_p5() -> None:
    nics = efa_network_interfaces(32, 32)
    assert nics[0] == {"networkCardIndex": 0, "deviceIndex": 0, "interfaceType": "interface"}
    assert sum(n["interfaceType"] == "efa-only" for n in nics) == 32
    assert {n["networkCardIndex"] for n in nics} == set(range(32))


def test_efa_plugin_runs_only_on_efa_nodes_and_tolerates_the_gpu_taint() -> None:
    from eks_llm_stack.constructs.device_plugins import GpuDevicePlugins

    values = GpuDevicePlugins.efa_values(_FakePlugins())  # type: ignore[arg-type]
    assert values["nodeSelector"] == {EFA_LABEL: "true"}
    assert values["image"] == {"repository": _FakePlugins().efa_image_repository()}
    assert {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"} in values["tolerations"]


class _FakePlugins:
    props = DevicePluginsProps()

    def efa_image_repository(self) -> str:
        return "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/aws-efa-k8s-device-plugin"


def test_time_slicing_config_advertises_replicas() -> None:
    text = nvidia_plugin_config(GpuSharing(time_slicing_replicas=4))
    assert "replicas: 4" in text and "migStrategy: none" in text


def test_pools_with_their_own_sharing_get_a_named_plugin_config() -> None:
    pool = dataclasses.replace(GpuNodePoolProps.inference("shared"), device_plugin=GpuSharing(time_slicing_replicas=2))
    assert DevicePluginsProps.for_pools([pool]).pool_sharing == {"shared": GpuSharing(time_slicing_replicas=2)}


# -- bad input -----------------------------------------------------------------------------


def test_efa_on_an_instance_type_without_efa_is_an_error() -> None:
    with pytest.raises(
        ConfigError, match=r"(?s)efa: EFA is on but g6\.xlarge have no EFA.*fix: pin instance_types to EFA sizes"
    ):
        GpuNodePoolProps(name="x", instance_types=("g6.xlarge",), efa=True)


def test_gpu_requirements_no_catalog_type_meets_are_an_error() -> None:
    with pytest.raises(ConfigError, match=r"(?s)gpu: no catalog instance type.*fix: loosen min_count"):
        GpuNodePoolProps(name="x", families=("g6",), gpu=GpuRequirements(min_count=8, min_memory_gib=40))


def test_an_empty_families_list_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"(?s)families: is empty.*fix: name at least one family"):
        GpuNodePoolProps(name="x", families=())


def test_a_budget_schedule_without_duration_is_an_error() -> None:
    with pytest.raises(
        ConfigError,
        match=r"(?s)disruption\.budgets\[0\]\.duration: a budget with a schedule needs a duration.*fix: add duration",
    ):
        GpuNodePoolProps(
            name="x", disruption=Disruption(budgets=(DisruptionBudget(nodes="0", schedule="0 9 * * mon-fri"),))
        )


def test_duplicate_pool_names_are_an_error() -> None:
    with pytest.raises(
        ConfigError,
        match=r"(?s)compute: pool names \['gpu'\] are used more than once.*fix: give every pool a different name",
    ):
        validate_profile(
            {
                "compute": {
                    "pools": [
                        {"name": "gpu", "preset": "inference"},
                        {"name": "gpu", "preset": "training", "availability_zone": "us-east-1a"},
                    ]
                }
            }
        )


def test_reserved_capacity_without_reservations_is_an_error() -> None:
    with pytest.raises(
        ConfigError,
        match=r"(?s)capacity_reservation_ids: capacity type 'reserved' needs.*fix: give capacity_reservation_ids",
    ):
        GpuNodePoolProps(name="x", capacity_types=("reserved",))


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError, match=r"3 problems"):
        GpuNodePoolProps(name="Bad_Name", families=(), weight=500)


def test_profile_pool_errors_name_the_pool() -> None:
    # Each pool problem keeps its own field under the pool's path (no message flattened into another's).
    with pytest.raises(ConfigError, match=r"(?s)compute\.pools\[0\]\.efa: EFA is on but .*fix: pin instance_types"):
        validate_profile({"compute": {"pools": [{"name": "gpu", "instance_types": ["g5.xlarge"], "efa": True}]}})


def test_a_training_pool_on_spot_with_a_placement_group_is_a_warning() -> None:
    props = GpuNodePoolProps.training(capacity_types=("spot",))
    stack = build((("Train", props),), subnets=lambda vpc: vpc.private_subnets[:1])
    Annotations.from_stack(stack.stack).has_warning(
        "/Gpu/Train", Match.string_like_regexp("spot capacity with a placement group")
    )


def test_a_pool_without_device_plugins_fails_synth_naming_the_construct_to_add() -> None:
    import re

    from aws_cdk.assertions import Template

    built = build([("lonely", GpuNodePoolProps.inference("lonely"))], device_plugins=False)
    with pytest.raises(RuntimeError, match=re.escape("GPU pool 'lonely': no GpuDevicePlugins for its cluster")):
        Template.from_stack(built.stack)


def test_explicit_deploy_time_subnets_are_tagged_by_the_pool_and_selected_by_that_tag() -> None:
    from aws_cdk.assertions import Template

    built = build([("infer", GpuNodePoolProps.inference("infer"))], subnets=lambda vpc: vpc.private_subnets)
    key = built.pools["infer"].subnet_tag_key
    assert built.doc("infer", "EC2NodeClass")["spec"]["subnetSelectorTerms"] == [{"tags": {key: "1"}}]
    subnets = Template.from_stack(built.stack).find_resources(
        "AWS::EC2::Subnet", {"Properties": {"Tags": Match.array_with([{"Key": key, "Value": "1"}])}}
    )
    assert len(subnets) == len(built.vpc.private_subnets)


def test_imported_subnets_with_deploy_time_ids_are_refused() -> None:
    from aws_cdk import Fn
    from aws_cdk import aws_ec2 as ec2

    with pytest.raises(ConfigError, match=r"subnets\[0\].*(\n.*)*fix: import it with its literal id"):
        build(
            [("infer", GpuNodePoolProps.inference("infer"))],
            subnets=lambda vpc: [ec2.Subnet.from_subnet_id(vpc, "Imported", Fn.import_value("SubnetId"))],
        )
