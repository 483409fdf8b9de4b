"""``ModelStorage``: where model weights live next to the GPUs — FSx for Lustre and/or EFS.

Lives in the Data stack, which deploys before the cluster exists and never references it. So
the construct creates a *storage client* security group and opens Lustre (988, 1018-1023) and
NFS (2049) only to it; the Platform stack attaches that group to the nodes (EC2NodeClass
``securityGroupSelectorTerms`` for GPU pools, the launch template for the system node group).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_efs as efs
from aws_cdk import aws_fsx as fsx
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from ..config.base import validate_model
from ..config.data import EfsConfig, FsxConfig, parse_s3_path
from ..errors import collecting
from ..gates.nag import acknowledge, acknowledge_checkov

#: Lustre: 988 for the LNet service, 1018-1023 for the client/server connections.
LUSTRE_PORTS = (ec2.Port.tcp(988), ec2.Port.tcp_range(1018, 1023))
NFS_PORT = ec2.Port.tcp(2049)
#: Days a replaced or deleted object version of the model bucket is kept.
NONCURRENT_VERSION_DAYS = 30

_IA = {
    "AFTER_1_DAY": efs.LifecyclePolicy.AFTER_1_DAY,
    "AFTER_7_DAYS": efs.LifecyclePolicy.AFTER_7_DAYS,
    "AFTER_14_DAYS": efs.LifecyclePolicy.AFTER_14_DAYS,
    "AFTER_30_DAYS": efs.LifecyclePolicy.AFTER_30_DAYS,
    "AFTER_60_DAYS": efs.LifecyclePolicy.AFTER_60_DAYS,
    "AFTER_90_DAYS": efs.LifecyclePolicy.AFTER_90_DAYS,
}


def efs_file_system_policy() -> iam.PolicyDocument:
    """The EFS policy: TLS only; mount and write only for this account's IAM principals that their own
    policies allow (``grant_read_write``), through a mount target; no root access."""
    return iam.PolicyDocument(
        statements=[
            iam.PolicyStatement(
                sid="DenyWithoutTls",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["*"],
                conditions={"Bool": {"aws:SecureTransport": "false"}},
            ),
            iam.PolicyStatement(
                sid="ThisAccountThroughMountTargets",
                principals=[iam.AccountRootPrincipal()],
                actions=["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
                conditions={"Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"}},
            ),
        ]
    )


@dataclass(frozen=True, kw_only=True)
class DataRepositoryOptions:
    """An S3 data repository association of the Lustre file system (checked as the profile's ``storage.fsx.data_repository``).

    ``s3_path`` — ``s3://bucket[/prefix]`` of an existing bucket, or ``new_bucket`` — create one (with
    ``new_bucket_prefix``, default ``models``); exactly one of the two. ``file_system_path`` — where the prefix
    appears (default ``/models``). ``import_metadata_on_create`` — list the objects on creation (default True).
    ``auto_import`` — S3 events mirrored into the file system (default NEW, CHANGED, DELETED; ``()`` = off).
    ``auto_export`` — file-system events written back to S3 (default none: a read-only cache).
    """

    s3_path: str | None = None
    new_bucket: bool = False
    new_bucket_prefix: str = "models"
    file_system_path: str = "/models"
    import_metadata_on_create: bool = True
    auto_import: tuple[str, ...] = ("NEW", "CHANGED", "DELETED")
    auto_export: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class LustreOptions:
    """FSx for Lustre for model weights (checked by the same rules as the profile's ``storage.fsx``).

    ``deployment_type`` — PERSISTENT_2 or SCRATCH_2 (default: SCRATCH_2 when ephemeral, else PERSISTENT_2).
    ``storage_capacity_gib`` — 1200 or a multiple of 2400 (default 1200). ``throughput_per_unit`` — MB/s per TiB
    of PERSISTENT_2: 125, 250, 500 or 1000 (default 250). ``data_repository`` — an S3 association (default none).
    """

    deployment_type: str | None = None
    storage_capacity_gib: int = 1200
    throughput_per_unit: int = 250
    data_repository: DataRepositoryOptions | None = None

    def __post_init__(self) -> None:
        _checked(FsxConfig, self, "LustreOptions")

    def effective_deployment_type(self, ephemeral: bool) -> str:
        """The type to deploy: the one given, else SCRATCH_2 for an ephemeral profile, else PERSISTENT_2."""
        if self.deployment_type is not None:
            return self.deployment_type
        return "SCRATCH_2" if ephemeral else "PERSISTENT_2"

    @classmethod
    def from_config(cls, cfg: FsxConfig) -> LustreOptions:
        dr = cfg.data_repository
        return cls(
            deployment_type=cfg.deployment_type,
            storage_capacity_gib=cfg.storage_capacity_gib,
            throughput_per_unit=cfg.throughput_per_unit,
            data_repository=DataRepositoryOptions(**dr.model_dump()) if dr is not None else None,
        )


@dataclass(frozen=True, kw_only=True)
class EfsCacheOptions:
    """EFS as a shared, ReadWriteMany model cache (checked by the same rules as the profile's ``storage.efs``).

    ``uid`` / ``gid`` — POSIX owner of the access point (default 1000 / 1000). ``path`` — its root directory
    (default ``/model-cache``). ``transition_to_ia`` — e.g. ``AFTER_30_DAYS`` (default never). ``backup`` — AWS
    Backup daily backups (default True).
    """

    uid: int = 1000
    gid: int = 1000
    path: str = "/model-cache"
    transition_to_ia: str | None = None
    backup: bool = True

    def __post_init__(self) -> None:
        _checked(EfsConfig, self, "EfsCacheOptions")

    @classmethod
    def from_config(cls, cfg: EfsConfig) -> EfsCacheOptions:
        return cls(**cfg.model_dump())


def _checked(model: type[FsxConfig] | type[EfsConfig], options: Any, subject: str) -> None:
    """Run the profile section's validators over plain options: one rule set for YAML and for code."""
    validate_model(model, dataclasses.asdict(options), subject)


@dataclass(frozen=True, kw_only=True)
class ModelStorageProps:
    """Model storage in ``vpc``.

    ``fsx`` / ``efs`` — the file systems to create (validated profile sections; at least one).
    ``subnets`` — where EFS mount targets go (one per subnet) and FSx lives (the first subnet);
    default: the VPC's private subnets with egress.
    ``ephemeral`` — a throw-away environment: FSx defaults to SCRATCH_2 (default false: PERSISTENT_2).
    ``removal_policy`` — of the file systems, the key and a new bucket (default RETAIN).
    ``encryption_key`` — KMS key of EFS and of a persistent FSx (default: a new key with rotation).
    ``client_security_group`` — the group nodes must carry to mount (default: a new one).
    ``model_writer_arns`` — IAM roles/users that upload weights to a new model bucket (bucket and key
    policy; default none: write access comes only from identity policies you add).
    """

    vpc: ec2.IVpc
    fsx: LustreOptions | None = None
    efs: EfsCacheOptions | None = None
    subnets: ec2.SubnetSelection | None = None
    ephemeral: bool = False
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    encryption_key: kms.IKey | None = None
    client_security_group: ec2.ISecurityGroup | None = None
    model_writer_arns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Profile sections (pydantic) are accepted for one release and turned into the plain options.
        if isinstance(self.fsx, FsxConfig):
            object.__setattr__(self, "fsx", LustreOptions.from_config(self.fsx))
        if isinstance(self.efs, EfsConfig):
            object.__setattr__(self, "efs", EfsCacheOptions.from_config(self.efs))
        with collecting("ModelStorageProps") as p:
            p.check(
                self.fsx is not None or self.efs is not None,
                "fsx",
                None,
                "neither fsx nor efs is given",
                "pass fsx=LustreOptions(...), efs=EfsCacheOptions(...), or both",
            )


class ModelStorage(Construct):
    """FSx for Lustre (optional S3 data repository association) and/or EFS with a model-cache access point.

    Attributes: ``client_security_group`` (attach to nodes), ``connections`` (the file systems'
    groups), ``key``; with FSx ``lustre``, ``fsx_security_group``, ``deployment_type``,
    ``data_repository`` and ``model_bucket`` (when associated); with EFS ``efs``,
    ``access_point``, ``efs_security_group``.
    """

    def __init__(self, scope: Construct, id: str, *, props: ModelStorageProps) -> None:
        super().__init__(scope, id)
        self.props = props
        self.key: kms.IKey = props.encryption_key or kms.Key(
            self,
            "Key",
            description="Encryption at rest of the model file systems",
            enable_key_rotation=True,
            removal_policy=props.removal_policy,
        )
        self.client_security_group = props.client_security_group or ec2.SecurityGroup(
            self,
            "ClientSecurityGroup",
            vpc=props.vpc,
            description="Nodes that mount the model file systems (Lustre 988/1018-1023, NFS 2049)",
            # Rules to the file systems are added below; the nodes' own groups carry their general egress.
            allow_all_outbound=False,
        )
        selection = props.subnets or ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        # SubnetSelection is a jsii struct; its fields are select_subnets' keyword arguments.
        self._subnets = props.vpc.select_subnets(**selection._values)
        groups: list[ec2.ISecurityGroup] = []
        self.lustre: fsx.LustreFileSystem | None = None
        self.efs: efs.FileSystem | None = None
        self.access_point: efs.AccessPoint | None = None
        self.model_bucket: s3.IBucket | None = None
        self.data_repository: fsx.CfnDataRepositoryAssociation | None = None
        if props.fsx is not None:
            groups.append(self._add_fsx(props.fsx))
        if props.efs is not None:
            groups.append(self._add_efs(props.efs))
        self.connections = ec2.Connections(security_groups=groups)

    # -- FSx for Lustre -----------------------------------------------------------------------
    def _add_fsx(self, cfg: LustreOptions) -> ec2.ISecurityGroup:
        props = self.props
        self.deployment_type = cfg.effective_deployment_type(props.ephemeral)
        persistent = self.deployment_type == "PERSISTENT_2"
        self.fsx_security_group = ec2.SecurityGroup(
            self,
            "FsxSecurityGroup",
            vpc=props.vpc,
            description="FSx for Lustre: Lustre ports from storage clients only",
        )
        for port in LUSTRE_PORTS:
            self.fsx_security_group.connections.allow_from(
                self.client_security_group, port, "Lustre from storage clients"
            )
            # Lustre servers also open connections back to clients on these ports.
            self.client_security_group.connections.allow_from(self.fsx_security_group, port, "Lustre from file servers")
        # (The L2 itself opens 988-1023 between the file servers, within this group.)
        self.lustre = fsx.LustreFileSystem(
            self,
            "Lustre",
            vpc=props.vpc,
            vpc_subnet=self._subnets.subnets[0],
            storage_capacity_gib=cfg.storage_capacity_gib,
            # 2.15: data repository associations work on both types, and AL2023 ships a 2.15 client.
            file_system_type_version=fsx.FileSystemTypeVersion.V_2_15,
            security_group=self.fsx_security_group,
            # SCRATCH_2 is always encrypted with an FSx-owned key and refuses a customer key.
            kms_key=self.key if persistent else None,
            removal_policy=props.removal_policy,
            lustre_configuration=fsx.LustreConfiguration(
                deployment_type=fsx.LustreDeploymentType[self.deployment_type],
                per_unit_storage_throughput=cfg.throughput_per_unit if persistent else None,
                data_compression_type=fsx.LustreDataCompressionType.LZ4,
            ),
        )
        if cfg.data_repository is not None:
            self._add_data_repository(cfg)
        return self.fsx_security_group

    def _add_data_repository(self, cfg: LustreOptions) -> None:
        dr = cfg.data_repository
        assert dr is not None and self.lustre is not None
        if dr.new_bucket:
            bucket = s3.Bucket(
                self,
                "ModelBucket",
                # SSE-KMS with the storage key (S3 Bucket Keys keep the KMS request count low). FSx reads
                # and writes the bucket through its service-linked role: the key policy lets that role use
                # the key through S3 only (see _allow_fsx_on_key).
                encryption=s3.BucketEncryption.KMS,
                encryption_key=self.key,
                bucket_key_enabled=True,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                enforce_ssl=True,
                versioned=True,
                # Overwritten weights stay recoverable for a while, then stop costing storage.
                lifecycle_rules=[
                    s3.LifecycleRule(
                        id="ExpireNoncurrentVersions",
                        noncurrent_version_expiration=Duration.days(NONCURRENT_VERSION_DAYS),
                        abort_incomplete_multipart_upload_after=Duration.days(7),
                    )
                ],
                removal_policy=self.props.removal_policy,
            )
            self._allow_fsx_on_key()
            for i, arn in enumerate(self.props.model_writer_arns):
                self.grant_model_bucket_write(iam.ArnPrincipal(arn), bucket_policy_id=i)
            acknowledge(
                bucket,
                "AwsSolutions-S1",
                "Model weights only; object access is audited with CloudTrail data events where required, "
                "not with server access logs.",
            )
            acknowledge_checkov(
                bucket,
                "CKV_AWS_18",
                "Model weights only; object access is audited with CloudTrail data events where required, "
                "not with server access logs",
            )
            self.model_bucket = bucket
            repository_path = (
                bucket.s3_url_for_object(dr.new_bucket_prefix) if dr.new_bucket_prefix else bucket.s3_url_for_object()
            )
        else:
            assert dr.s3_path is not None
            name, prefix = parse_s3_path(dr.s3_path)
            self.model_bucket = s3.Bucket.from_bucket_name(self, "ModelBucket", name)
            repository_path = f"s3://{name}/{prefix}" if prefix else f"s3://{name}"
        s3_config = None
        if dr.auto_import or dr.auto_export:
            s3_config = fsx.CfnDataRepositoryAssociation.S3Property(
                auto_import_policy=fsx.CfnDataRepositoryAssociation.AutoImportPolicyProperty(
                    events=list(dr.auto_import)
                )
                if dr.auto_import
                else None,
                auto_export_policy=fsx.CfnDataRepositoryAssociation.AutoExportPolicyProperty(
                    events=list(dr.auto_export)
                )
                if dr.auto_export
                else None,
            )
        # No L2 exists for data repository associations.
        self.data_repository = fsx.CfnDataRepositoryAssociation(
            self,
            "ModelRepository",
            file_system_id=self.lustre.file_system_id,
            file_system_path=dr.file_system_path,
            data_repository_path=repository_path,
            batch_import_meta_data_on_create=dr.import_metadata_on_create,
            s3=s3_config,
        )
        self.data_repository.apply_removal_policy(self.props.removal_policy)

    # -- EFS ------------------------------------------------------------------------------------
    def _add_efs(self, cfg: EfsCacheOptions) -> ec2.ISecurityGroup:
        props = self.props
        self.efs_security_group = ec2.SecurityGroup(
            self,
            "EfsSecurityGroup",
            vpc=props.vpc,
            description="EFS model cache: NFS from storage clients only",
            allow_all_outbound=False,
        )
        self.efs = efs.FileSystem(
            self,
            "Efs",
            vpc=props.vpc,
            vpc_subnets=ec2.SubnetSelection(subnets=self._subnets.subnets),
            encrypted=True,
            kms_key=self.key,
            throughput_mode=efs.ThroughputMode.ELASTIC,
            performance_mode=efs.PerformanceMode.GENERAL_PURPOSE,
            lifecycle_policy=_IA[cfg.transition_to_ia] if cfg.transition_to_ia else None,
            enable_automatic_backups=cfg.backup,
            # Our own file system policy (below) replaces aws-cdk-lib's, which lets *any* principal that
            # reaches a mount target write as root; "anonymous access" stays off because the policy
            # grants nothing to anonymous (non-IAM) mounts.
            file_system_policy=efs_file_system_policy(),
            allow_anonymous_access=True,
            security_group=self.efs_security_group,
            removal_policy=props.removal_policy,
        )
        self.efs.connections.allow_from(self.client_security_group, NFS_PORT, "NFS from storage clients")
        self.access_point = self.efs.add_access_point(
            "ModelCache",
            path=cfg.path,
            posix_user=efs.PosixUser(uid=str(cfg.uid), gid=str(cfg.gid)),
            create_acl=efs.Acl(owner_uid=str(cfg.uid), owner_gid=str(cfg.gid), permissions="755"),
        )
        return self.efs_security_group

    # -- integration ----------------------------------------------------------------------------
    def allow_clients(self, peer: ec2.IConnectable) -> None:
        """Open Lustre and NFS to ``peer`` directly (in addition to the client security group)."""
        if self.lustre is not None:
            for port in LUSTRE_PORTS:
                self.fsx_security_group.connections.allow_from(peer, port, "Lustre from storage clients")
        if self.efs is not None:
            self.efs.connections.allow_from(peer, NFS_PORT, "NFS from storage clients")

    def grant_efs_read_write(self, grantee: iam.IGrantable) -> iam.Grant:
        """ClientMount + ClientWrite on the EFS file system (required: the file system refuses anonymous mounts)."""
        if self.efs is None:
            raise ValueError(
                "grant_efs_read_write: this ModelStorage has no EFS file system (set efs=EfsCacheOptions())"
            )
        return self.efs.grant_read_write(grantee)

    def _allow_fsx_on_key(self) -> None:
        """FSx's S3 data-repository service-linked role may use the key, through S3, in this account."""
        if not isinstance(self.key, kms.Key):
            return  # a key passed in: its owner writes the key policy
        acknowledge_checkov(
            self.key,
            "CKV_AWS_33",
            "The '*' principal is narrowed by aws:PrincipalAccount (this account), aws:PrincipalArn (FSx's S3 "
            "data-repository service-linked roles, named after a file system id unknown at synth) and "
            "kms:ViaService (S3 only)",
        )
        stack = Stack.of(self)
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="FsxDataRepositoryThroughS3",
                principals=[iam.AnyPrincipal()],
                actions=["kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey"],
                resources=["*"],
                conditions={
                    "StringEquals": {
                        "aws:PrincipalAccount": stack.account,
                        "kms:ViaService": f"s3.{stack.region}.amazonaws.com",
                    },
                    "ArnLike": {
                        "aws:PrincipalArn": f"arn:{stack.partition}:iam::{stack.account}:role/aws-service-role/"
                        "s3.data-source.lustre.fsx.amazonaws.com/*"
                    },
                },
            )
        )

    def grant_model_bucket_write(self, grantee: iam.IPrincipal, *, bucket_policy_id: int | None = None) -> None:
        """Let ``grantee`` upload and replace weights in the new model bucket (and encrypt with its key).

        The writer is named in the bucket policy (so a role of another account works too) and in the
        key policy; reading stays with :meth:`grant_model_bucket_read`.
        """
        bucket = self.model_bucket
        if not isinstance(bucket, s3.Bucket):
            raise ValueError("grant_model_bucket_write: only a bucket this construct creates (new_bucket: true)")
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"ModelWriter{bucket_policy_id if bucket_policy_id is not None else ''}",
                principals=[grantee],
                actions=[
                    "s3:PutObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                    "s3:GetObject",
                    "s3:ListBucket",
                    "s3:GetBucketLocation",
                ],
                resources=[bucket.bucket_arn, bucket.arn_for_objects("*")],
            )
        )
        if isinstance(self.key, kms.Key):
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    principals=[grantee],
                    actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                    resources=["*"],
                    conditions={"StringEquals": {"kms:ViaService": f"s3.{Stack.of(self).region}.amazonaws.com"}},
                )
            )

    def grant_model_bucket_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Read the S3 bucket behind the FSx data repository (e.g. for a model-fetch Job)."""
        if self.model_bucket is None:
            raise ValueError("grant_model_bucket_read: no data repository bucket (set fsx.data_repository)")
        return self.model_bucket.grant_read(grantee)

    @property
    def fsx_file_system_arn(self) -> str | None:
        """ARN of the Lustre file system (the L2 exposes only its id)."""
        if self.lustre is None:
            return None
        return Stack.of(self).format_arn(
            service="fsx", resource="file-system", resource_name=self.lustre.file_system_id
        )
