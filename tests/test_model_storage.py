"""Model storage: FSx for Lustre, EFS, their security groups, removal policies and CSI drivers."""

from __future__ import annotations

import pytest
from aws_cdk import App, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Match, Template

from eks_llm_stack.config import validate_profile
from eks_llm_stack.config.data import DataRepositoryConfig, FsxConfig
from eks_llm_stack.constructs.model_storage import ModelStorage, ModelStorageProps
from eks_llm_stack.errors import ConfigError

# Construct ids are API: these logical ids must never change (a change replaces the file system).
FSX_LOGICAL_ID = "ModelStorageLustreCAEFDDD3"
EFS_LOGICAL_ID = "ModelStorageEfs000A1D67"
DRA_LOGICAL_ID = "ModelStorageModelRepositoryEEF1DC57"


@pytest.fixture(scope="module")
def data(production_synth) -> Template:
    return Template.from_json(production_synth.template("Data"))


@pytest.fixture(scope="module")
def ephemeral_data(ephemeral_synth) -> Template:
    return Template.from_json(ephemeral_synth.template("Data"))


@pytest.fixture(scope="module")
def scratch() -> Template:
    """An ephemeral FSx with an existing bucket: the type defaults to SCRATCH_2."""
    stack = Stack(App(), "T")
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
    ModelStorage(
        stack,
        "ModelStorage",
        props=ModelStorageProps(
            vpc=vpc,
            fsx=FsxConfig(data_repository=DataRepositoryConfig(s3_path="s3://team-models/llama/", auto_import=())),
            ephemeral=True,
            removal_policy=RemovalPolicy.DESTROY,
        ),
    )
    return Template.from_stack(stack)


# -- identity and lifecycle ----------------------------------------------------------------------
def test_fsx_logical_id_is_pinned(data: Template) -> None:
    assert list(data.find_resources("AWS::FSx::FileSystem")) == [FSX_LOGICAL_ID]


def test_efs_logical_id_is_pinned(data: Template, ephemeral_data: Template) -> None:
    assert list(data.find_resources("AWS::EFS::FileSystem")) == [EFS_LOGICAL_ID]
    assert list(ephemeral_data.find_resources("AWS::EFS::FileSystem")) == [EFS_LOGICAL_ID]


def test_data_repository_logical_id_is_pinned(data: Template) -> None:
    assert list(data.find_resources("AWS::FSx::DataRepositoryAssociation")) == [DRA_LOGICAL_ID]


def test_default_profile_retains_file_systems(data: Template) -> None:
    for kind in (
        "AWS::FSx::FileSystem",
        "AWS::EFS::FileSystem",
        "AWS::FSx::DataRepositoryAssociation",
        "AWS::KMS::Key",
    ):
        for res in data.find_resources(kind).values():
            assert (res["DeletionPolicy"], res["UpdateReplacePolicy"]) == ("Retain", "Retain"), kind


def test_ephemeral_profile_destroys_file_systems(ephemeral_data: Template) -> None:
    res = ephemeral_data.find_resources("AWS::EFS::FileSystem")[EFS_LOGICAL_ID]
    assert res["DeletionPolicy"] == "Delete"


# -- FSx -----------------------------------------------------------------------------------------
def test_fsx_is_persistent_2_with_lz4_kms_and_profile_throughput(data: Template) -> None:
    data.has_resource_properties(
        "AWS::FSx::FileSystem",
        {
            "StorageCapacity": 2400,
            "FileSystemTypeVersion": "2.15",
            "KmsKeyId": Match.any_value(),
            "LustreConfiguration": Match.object_like(
                {"DeploymentType": "PERSISTENT_2", "PerUnitStorageThroughput": 250, "DataCompressionType": "LZ4"}
            ),
        },
    )


def test_ephemeral_fsx_is_scratch_2_without_throughput_or_customer_key(scratch: Template) -> None:
    (fs,) = scratch.find_resources("AWS::FSx::FileSystem").values()
    cfg = fs["Properties"]["LustreConfiguration"]
    assert cfg["DeploymentType"] == "SCRATCH_2"
    assert "PerUnitStorageThroughput" not in cfg
    assert "KmsKeyId" not in fs["Properties"]
    assert fs["DeletionPolicy"] == "Delete"


def test_data_repository_links_the_new_bucket_with_auto_import(data: Template) -> None:
    data.has_resource_properties(
        "AWS::FSx::DataRepositoryAssociation",
        {
            "FileSystemPath": "/models",
            "BatchImportMetaDataOnCreate": True,
            "DataRepositoryPath": Match.object_like({"Fn::Join": Match.array_with([Match.array_with(["s3://"])])}),
            "S3": {"AutoImportPolicy": {"Events": ["NEW", "CHANGED", "DELETED"]}},
        },
    )


def test_data_repository_uses_an_existing_bucket_path(scratch: Template) -> None:
    scratch.has_resource_properties(
        "AWS::FSx::DataRepositoryAssociation", {"DataRepositoryPath": "s3://team-models/llama", "S3": Match.absent()}
    )


def test_lustre_ports_open_only_to_the_client_group_and_the_file_servers(data: Template) -> None:
    rules = data.find_resources("AWS::EC2::SecurityGroupIngress")
    lustre = [r["Properties"] for r in rules.values() if r["Properties"].get("FromPort") in (988, 1018)]
    assert lustre, "no Lustre ingress rules"
    for rule in lustre:
        assert "CidrIp" not in rule
        source = rule["SourceSecurityGroupId"]["Fn::GetAtt"][0]
        target = rule["GroupId"]["Fn::GetAtt"][0]
        if source == target:  # between the file servers (added by the L2 itself)
            assert source.startswith("ModelStorageFsxSecurityGroup")
            continue
        assert {source[:-8], target[:-8]} == {"ModelStorageClientSecurityGroup", "ModelStorageFsxSecurityGroup"}
        assert (rule["FromPort"], rule["ToPort"]) in ((988, 988), (1018, 1023))


# -- EFS -----------------------------------------------------------------------------------------
def test_efs_is_encrypted_elastic_backed_up_and_tiered(data: Template) -> None:
    data.has_resource_properties(
        "AWS::EFS::FileSystem",
        {
            "Encrypted": True,
            "KmsKeyId": Match.any_value(),
            "ThroughputMode": "elastic",
            "BackupPolicy": {"Status": "ENABLED"},
            "LifecyclePolicies": [{"TransitionToIA": "AFTER_30_DAYS"}],
        },
    )


def test_efs_refuses_anonymous_mounts(data: Template) -> None:
    data.has_resource_properties("AWS::EFS::FileSystem", {"FileSystemPolicy": Match.any_value()})


def test_efs_has_a_mount_target_in_every_private_subnet(production_synth) -> None:
    t = Template.from_json(production_synth.template("Data"))
    t.resource_count_is("AWS::EFS::MountTarget", production_synth.profile.network.max_azs)


def test_efs_access_point_sets_the_posix_owner(data: Template) -> None:
    data.has_resource_properties(
        "AWS::EFS::AccessPoint",
        {
            "PosixUser": {"Uid": "1000", "Gid": "1000"},
            "RootDirectory": {"Path": "/model-cache", "CreationInfo": Match.object_like({"OwnerUid": "1000"})},
        },
    )


def test_nfs_open_only_to_the_client_group(data: Template) -> None:
    rules = [r["Properties"] for r in data.find_resources("AWS::EC2::SecurityGroupIngress").values()]
    nfs = [r for r in rules if r.get("FromPort") == 2049]
    assert len(nfs) == 1
    assert "ModelStorageClientSecurityGroup" in str(nfs[0]["SourceSecurityGroupId"])


# -- CSI drivers (Platform) ---------------------------------------------------------------------
def test_csi_add_ons_have_pod_identity_roles(production_synth) -> None:
    platform = Template.from_json(production_synth.template("Platform"))
    for name, sas in (
        ("aws-efs-csi-driver", ["efs-csi-controller-sa", "efs-csi-node-sa"]),
        ("aws-fsx-csi-driver", ["fsx-csi-controller-sa"]),
    ):
        (addon,) = [
            r for r in platform.find_resources("AWS::EKS::Addon").values() if r["Properties"]["AddonName"] == name
        ]
        assert [a["ServiceAccount"] for a in addon["Properties"]["PodIdentityAssociations"]] == sas


def test_fsx_csi_role_is_scoped_to_the_file_system(production_synth) -> None:
    platform = Template.from_json(production_synth.template("Platform"))
    policies = [
        p
        for lid, p in platform.find_resources("AWS::IAM::Policy").items()
        if lid.startswith("StorageCsiDriversFsxControllerRole")
    ]
    (statement,) = policies[0]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == ["fsx:DescribeFileSystems", "fsx:UpdateFileSystem"]
    assert "file-system/" in str(statement["Resource"]) and statement["Resource"] != "*"


# -- bad input -----------------------------------------------------------------------------------
def test_capacity_must_fit_the_deployment_type() -> None:
    with pytest.raises(
        ConfigError, match=r"storage\.fsx\.storage_capacity_gib: 3000 GiB .*\n.*fix: use 1200 or a multiple of 2400"
    ):
        validate_profile({"storage": {"fsx": {"storage_capacity_gib": 3000}}})


def test_throughput_must_be_a_tier() -> None:
    with pytest.raises(
        ConfigError, match=r"throughput_per_unit: 300 MB/s/TiB .*\n.*fix: use one of 125, 250, 500, 1000"
    ):
        validate_profile({"storage": {"fsx": {"throughput_per_unit": 300}}})


def test_s3_path_must_be_an_s3_url() -> None:
    with pytest.raises(ConfigError, match=r"s3_path: 'https://bucket/x' is not an S3 path.*\n.*fix: write s3://bucket"):
        validate_profile({"storage": {"fsx": {"data_repository": {"s3_path": "https://bucket/x"}}}})


def test_every_storage_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError, match="3 problems") as err:
        validate_profile(
            {
                "storage": {
                    "fsx": {"storage_capacity_gib": 100, "throughput_per_unit": 7, "data_repository": {"s3_path": "x"}}
                }
            }
        )
    assert "storage_capacity_gib" in str(err.value) and "throughput_per_unit" in str(err.value)


def test_existing_and_new_bucket_are_exclusive() -> None:
    with pytest.raises(ConfigError, match=r"either s3_path .* or new_bucket.*\n.*fix: keep exactly one"):
        validate_profile({"storage": {"fsx": {"data_repository": {"s3_path": "s3://abc/x", "new_bucket": True}}}})


def test_storage_props_need_a_file_system() -> None:
    stack = Stack(App(), "E")
    with pytest.raises(ConfigError, match=r"fsx: neither fsx nor efs is given.*\n.*fix: pass fsx="):
        ModelStorageProps(vpc=ec2.Vpc(stack, "Vpc"))


def test_efs_access_point_root_must_be_a_directory() -> None:
    with pytest.raises(
        ConfigError, match=r"storage\.efs\.path: '/' is not an access point root.*\n.*fix: use an absolute"
    ):
        validate_profile({"storage": {"efs": {"path": "/"}}})


def test_plain_options_default_to_what_the_profile_sections_default_to() -> None:
    import dataclasses

    from eks_llm_stack.config.data import DataRepositoryConfig, EfsConfig, FsxConfig
    from eks_llm_stack.constructs import DataRepositoryOptions, EfsCacheOptions, LustreOptions

    for options, section in (
        (LustreOptions(), FsxConfig()),
        (EfsCacheOptions(), EfsConfig()),
        (DataRepositoryOptions(new_bucket=True), DataRepositoryConfig(new_bucket=True)),
    ):
        assert dataclasses.asdict(options) == section.model_dump(), type(options).__name__


def test_plain_options_are_checked_by_the_profile_rules() -> None:
    from eks_llm_stack.constructs import EfsCacheOptions, LustreOptions

    with pytest.raises(ConfigError, match=r"storage_capacity_gib.*(\n.*)*fix: use 1200 or a multiple of 2400"):
        LustreOptions(storage_capacity_gib=1000)
    with pytest.raises(ConfigError, match=r"path.*(\n.*)*fix: use an absolute directory"):
        EfsCacheOptions(path="relative")
