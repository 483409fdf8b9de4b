"""``StorageCsiDrivers``: the EFS and FSx for Lustre CSI drivers as EKS managed add-ons.

Each driver's service accounts get an EKS Pod Identity role scoped to *our* file systems, not
the broad AWS-managed driver policies (which allow every file system in the account).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aws_cdk import Stack, Token
from aws_cdk import aws_efs as efs
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

from ..charts.kube import system_tolerations
from ..conventions import SYSTEM_NODE_LABEL
from ..errors import collecting
from ..gates.nag import acknowledge
from .pod_identity import pod_identity_role

EFS_ADDON = "aws-efs-csi-driver"
FSX_ADDON = "aws-fsx-csi-driver"
#: Service accounts the add-ons run under (kube-system), as the add-ons name them.
EFS_CONTROLLER_SA = "efs-csi-controller-sa"
EFS_NODE_SA = "efs-csi-node-sa"
FSX_CONTROLLER_SA = "fsx-csi-controller-sa"
#: Tag the EFS driver puts on the access points it creates; deletion is limited to those.
EFS_CSI_TAG = "efs.csi.aws.com/cluster"


@dataclass(frozen=True, kw_only=True)
class StorageCsiDriversProps:
    """The drivers to install.

    ``cluster`` — where. ``efs_file_system`` — install the EFS driver, scoped to this file system
    (default none: no EFS driver). ``fsx_file_system_arn`` — install the FSx driver, scoped to
    this file system (default none: no FSx driver). ``addon_versions`` — pin an add-on version by
    name (default: EKS's default for the cluster version).
    """

    cluster: eks.ICluster
    efs_file_system: efs.IFileSystem | None = None
    fsx_file_system_arn: str | None = None
    addon_versions: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        with collecting("StorageCsiDriversProps") as p:
            p.check(
                self.efs_file_system is not None or self.fsx_file_system_arn is not None,
                "efs_file_system",
                None,
                "no file system given, so no driver to install",
                "pass efs_file_system and/or fsx_file_system_arn",
            )
            unknown = sorted(set(self.addon_versions) - {EFS_ADDON, FSX_ADDON})
            p.check(
                not unknown,
                "addon_versions",
                unknown,
                "not add-ons this construct installs",
                f"pin {EFS_ADDON} or {FSX_ADDON}",
            )


class StorageCsiDrivers(Construct):
    """The add-ons and their roles. Attributes: ``efs_addon``, ``efs_controller_role``,
    ``efs_node_role``, ``fsx_addon``, ``fsx_controller_role`` (``None`` when not installed)."""

    def __init__(self, scope: Construct, id: str, *, props: StorageCsiDriversProps) -> None:
        super().__init__(scope, id)
        self.props = props
        controller_placement = {"nodeSelector": {SYSTEM_NODE_LABEL: "true"}, "tolerations": system_tolerations()}
        self.efs_addon: eks.Addon | None = None
        self.fsx_addon: eks.Addon | None = None
        self.efs_controller_role: iam.Role | None = None
        self.efs_node_role: iam.Role | None = None
        self.fsx_controller_role: iam.Role | None = None
        if props.efs_file_system is not None:
            self._add_efs(props.efs_file_system, controller_placement)
        if props.fsx_file_system_arn is not None:
            self._add_fsx(props.fsx_file_system_arn, controller_placement)

    @property
    def addons(self) -> tuple[eks.Addon, ...]:
        """The add-ons installed (apply volumes after them)."""
        return tuple(a for a in (self.efs_addon, self.fsx_addon) if a is not None)

    def _addon(
        self, construct_id: str, name: str, config: dict, associations: list[tuple[str, iam.IRole]]
    ) -> eks.Addon:
        addon = eks.Addon(
            self,
            construct_id,
            cluster=self.props.cluster,
            addon_name=name,
            addon_version=self.props.addon_versions.get(name),
            configuration_values=config,
            preserve_on_delete=False,
        )
        # The L2 Addon has no pod-identity property; the associations belong to the add-on itself.
        addon.node.default_child.add_property_override(  # type: ignore[union-attr]
            "PodIdentityAssociations",
            [{"ServiceAccount": sa, "RoleArn": role.role_arn} for sa, role in associations],
        )
        return addon

    def _add_efs(self, file_system: efs.IFileSystem, placement: dict) -> None:
        stack = Stack.of(self)
        access_points = stack.format_arn(service="elasticfilesystem", resource="access-point", resource_name="*")
        controller = pod_identity_role(
            self,
            "EfsControllerRole",
            "EFS CSI controller: access points of the model cache file system",
            cluster=self.props.cluster,
            namespace="kube-system",
            service_account=EFS_CONTROLLER_SA,
        )
        controller.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "elasticfilesystem:DescribeFileSystems",
                    "elasticfilesystem:DescribeMountTargets",
                    "elasticfilesystem:DescribeAccessPoints",
                ],
                resources=[file_system.file_system_arn],
            )
        )
        # Dynamic provisioning creates an access point with its tags in the request (tag-on-create): IAM
        # checks CreateAccessPoint on the file system and the new access point, and TagResource on the
        # access point, each with the driver's tag in the request.
        controller.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["elasticfilesystem:CreateAccessPoint"],
                resources=[file_system.file_system_arn, access_points],
                conditions={"StringLike": {f"aws:RequestTag/{EFS_CSI_TAG}": "true"}},
            )
        )
        controller.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["elasticfilesystem:TagResource"],
                resources=[access_points],
                conditions={"StringLike": {f"aws:RequestTag/{EFS_CSI_TAG}": "true"}},
            )
        )
        # Later tag changes, as the reference policy allows them: only on access points the driver tagged.
        controller.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["elasticfilesystem:TagResource"],
                resources=[access_points],
                conditions={"StringLike": {f"aws:ResourceTag/{EFS_CSI_TAG}": "true"}},
            )
        )
        controller.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["elasticfilesystem:DeleteAccessPoint"],
                resources=[access_points],
                conditions={"StringEquals": {f"aws:ResourceTag/{EFS_CSI_TAG}": "true"}},
            )
        )
        # No resource-level permission exists for this read-only call.
        controller.add_to_principal_policy(
            iam.PolicyStatement(actions=["ec2:DescribeAvailabilityZones"], resources=["*"])
        )
        policy = controller.node.find_child("DefaultPolicy").node.default_child
        assert policy is not None

        # cdk-nag names each wildcard resource; pseudo parameters appear as <AWS::Name>.
        def shown(value: str, pseudo: str) -> str:
            return f"<AWS::{pseudo}>" if Token.is_unresolved(value) else value

        ap_shown = (
            f"arn:{shown(stack.partition, 'Partition')}:elasticfilesystem:{shown(stack.region, 'Region')}:"
            f"{shown(stack.account, 'AccountId')}:access-point/*"
        )
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::{ap_shown}]",
            "Access point ARNs are generated by EFS when the driver creates them; creating and tagging need the "
            "driver's efs.csi.aws.com/cluster tag in the request, deleting and retagging need it on the access point.",
        )
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "ec2:DescribeAvailabilityZones is read-only and has no resource-level permission.",
        )
        node = pod_identity_role(
            self,
            "EfsNodeRole",
            "EFS CSI node: IAM-authorised mounts of the model cache file system",
            cluster=self.props.cluster,
            namespace="kube-system",
            service_account=EFS_NODE_SA,
        )
        # The file system refuses anonymous mounts; the node plugin mounts with the `iam` option.
        file_system.grant_read_write(node)
        self.efs_controller_role, self.efs_node_role = controller, node
        self.efs_addon = self._addon(
            "EfsCsi", EFS_ADDON, {"controller": placement}, [(EFS_CONTROLLER_SA, controller), (EFS_NODE_SA, node)]
        )

    def _add_fsx(self, file_system_arn: str, placement: dict) -> None:
        # Static provisioning only: the controller describes (and may grow) our file system and
        # never creates one, so no fsx:CreateFileSystem and no AmazonFSxFullAccess.
        controller = pod_identity_role(
            self,
            "FsxControllerRole",
            "FSx CSI controller: the model file system only",
            cluster=self.props.cluster,
            namespace="kube-system",
            service_account=FSX_CONTROLLER_SA,
        )
        controller.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["fsx:DescribeFileSystems", "fsx:UpdateFileSystem"], resources=[file_system_arn]
            )
        )
        self.fsx_controller_role = controller
        self.fsx_addon = self._addon("FsxCsi", FSX_ADDON, {"controller": placement}, [(FSX_CONTROLLER_SA, controller)])
