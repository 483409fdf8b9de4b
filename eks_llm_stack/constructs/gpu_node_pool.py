"""A Karpenter GPU pool: one EC2NodeClass and one NodePool, named after the pool.

``GpuNodePool(self, "Infer", cluster=cluster, karpenter=karpenter, props=GpuNodePoolProps.inference())``

The props (plain data, validated on creation) live in :mod:`eks_llm_stack.config.gpu_pool`
so that a profile can be checked without the CDK; they are re-exported here. What needs the
construct tree happens here: the placement group, the EFA security group, the single-AZ
subnet choice, and the manifests, applied after the Karpenter chart has installed its CRDs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import jsii
from aws_cdk import Annotations, Stack, Tags, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct, IValidation

from ..config.gpu_pool import (
    Disruption,
    DisruptionBudget,
    GpuNodePoolProps,
    GpuRequirements,
    GpuSharing,
    PlacementGroupSpec,
    PoolLimits,
    RootVolume,
)
from ..conventions import (
    CAPACITY_TYPE_LABEL,
    DISCOVERY_TAG,
    GPU_COUNT_LABEL,
    GPU_RESOURCE,
    GPU_TAINT_EFFECT,
    GPU_TAINT_KEY,
    GPU_TAINT_VALUE,
    INSTANCE_TYPE_LABEL,
    MANAGED_BY,
    POOL_LABEL,
    WORKLOAD_LABEL,
    ZONE_LABEL,
)
from ..errors import collecting
from .cluster_type import ClusterLike, as_icluster
from .placement_group import PoolPlacementGroup, single_zone_subnets


class KarpenterLike(Protocol):
    """What a pool needs of its Karpenter (:class:`~eks_llm_stack.constructs.karpenter.Karpenter`): the Helm
    chart, after which its manifests are applied (the chart installs the CRDs), and the role its nodes run as.

    A protocol rather than the class, so that this module does not import ``karpenter`` (whose
    ``add_gpu_node_pool`` factory imports this one).
    """

    @property
    def chart(self) -> Construct: ...

    @property
    def node_role(self) -> iam.IRole: ...


#: Prefix of the tag a pool puts on the explicit subnets it selects by tag (``<prefix><stack>.<pool>``).
POOL_SUBNET_TAG_PREFIX = "eks-llm-stack.io/subnet-of/"

__all__ = [
    "AMI_FAMILY_LABEL",
    "DEVICE_PLUGIN_CONFIG_LABEL",
    "EFA_LABEL",
    "Disruption",
    "DisruptionBudget",
    "GpuNodePool",
    "GpuNodePoolProps",
    "GpuRequirements",
    "GpuSharing",
    "PlacementGroupSpec",
    "PoolLimits",
    "RootVolume",
    "efa_network_interfaces",
]

#: Node label on EFA pools; the EFA device plugin runs only where it is "true".
EFA_LABEL = "eks-llm-stack.io/efa"
#: Node label with the AMI family (al2023 | bottlerocket): Bottlerocket ships its own NVIDIA plugin.
AMI_FAMILY_LABEL = "eks-llm-stack.io/ami-family"
#: Label the NVIDIA device plugin reads to pick a named sharing config for a node.
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
#: Tag on a pool's EFA security group, which its EC2NodeClass selects it by.
EFA_SECURITY_GROUP_TAG = "eks-llm-stack.io/efa-pool"
#: Tag EKS puts on the cluster security group (constant key: selectable with a token value).
CLUSTER_SECURITY_GROUP_TAG = "aws:eks:cluster-name"


def efa_network_interfaces(network_cards: int, max_efa_interfaces: int) -> list[dict[str, Any]]:
    """EC2NodeClass ``networkInterfaces`` using every EFA interface of an instance type.

    The primary ENA ``interface`` on card 0 (device 0), then one ``efa-only`` interface per
    network card: on card 0 at device 1, on the other cards at device 0 — AWS's recommended
    layout for multi-card EFA instances (EC2 user guide, "Maximize network bandwidth on
    instances with multiple network cards"). p5.48xlarge: 1 ENA + 32 EFA.
    """
    nics: list[dict[str, Any]] = [{"networkCardIndex": 0, "deviceIndex": 0, "interfaceType": "interface"}]
    for card in range(min(network_cards, max_efa_interfaces)):
        nics.append({"networkCardIndex": card, "deviceIndex": 1 if card == 0 else 0, "interfaceType": "efa-only"})
    return nics


@jsii.implements(IValidation)
class _RequiresDevicePlugins:
    """Synth-time check: a GPU pool is useless without the device plugins that advertise its GPUs (and EFA)."""

    def __init__(self, pool: GpuNodePool) -> None:
        self._pool = pool

    def validate(self) -> list[str]:
        pool = self._pool
        # Found by their marker: device_plugins imports this module, so this one does not import it back.
        plugins: list[Any] = [
            c
            for c in Stack.of(pool).node.root.node.find_all()
            if getattr(type(c), "ADVERTISES_GPUS", False) and _same_cluster(c.cluster, pool.cluster)  # type: ignore[attr-defined]
        ]
        if not plugins:
            return [
                f"GPU pool '{pool.name}': no GpuDevicePlugins for its cluster, so its nodes never advertise "
                "nvidia.com/gpu and no GPU pod schedules — fix: add GpuDevicePlugins(scope, id, cluster=cluster, "
                "props=DevicePluginsProps.for_pools([...])) (from eks_llm_stack.constructs)"
            ]
        if pool.props.efa and not any(p.efa is not None for p in plugins):
            return [
                f"GPU pool '{pool.name}' uses EFA but the GpuDevicePlugins of its cluster has the EFA plugin off — "
                "fix: build its props with DevicePluginsProps.for_pools(...) over every pool, or set efa=True"
            ]
        return []


def _same_cluster(a: eks.ICluster, b: eks.ICluster) -> bool:
    if a is b or a.node.path == b.node.path:
        return True
    names = (a.cluster_name, b.cluster_name)
    return not any(Token.is_unresolved(n) for n in names) and names[0] == names[1]


class GpuNodePool(Construct):
    """A Karpenter EC2NodeClass + NodePool for GPU instances, from :class:`GpuNodePoolProps`.

    ``apply_manifests`` — apply the manifests through the cluster (default True; False when the
    caller applies :meth:`to_chart` itself, after :meth:`dependencies`).
    ``subnets`` — the subnets the pool's nodes may use: selected by id, or (ids known only at deploy time)
    tagged by the pool and selected by that tag (default: every subnet tagged ``karpenter.sh/discovery:
    <cluster>``, with a warning). The cluster must also have
    :class:`~eks_llm_stack.constructs.device_plugins.GpuDevicePlugins` (checked at synth). With a placement group they are narrowed to one
    availability zone. ``placement_group`` — an existing group instead of ``props.placement_group``
    (never both).

    Public attributes: ``name``, ``props``, ``zone`` (str or None), ``placement_group``
    (:class:`PoolPlacementGroup`, an existing ``IPlacementGroup`` or None),
    ``efa_security_group`` (or None), ``manifest`` (the ``KubernetesManifest``, None when not applied).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cluster: ClusterLike,
        karpenter: KarpenterLike,
        props: GpuNodePoolProps,
        subnets: Sequence[ec2.ISubnet] | None = None,
        placement_group: ec2.IPlacementGroup | None = None,
        apply_manifests: bool = True,
    ) -> None:
        super().__init__(scope, id)
        cluster = as_icluster(cluster)
        self.props = props
        self.name = props.name
        self.cluster = cluster
        self.karpenter = karpenter
        with collecting(f"GpuNodePool '{props.name}'") as p:
            p.check(
                not (placement_group is not None and props.placement_group is not None),
                "placement_group",
                "both",
                "an existing placement group and props for a new one were both given",
                "pass either placement_group= (existing) or props.placement_group (new), not both",
            )
        for warning in props.warnings():
            Annotations.of(self).add_warning_v2("eks-llm-stack:gpu-pool-placement", warning)
        if placement_group is not None and "spot" in props.capacity_types:
            Annotations.of(self).add_warning_v2(
                "eks-llm-stack:gpu-pool-placement",
                f"pool '{props.name}': spot capacity with a placement group — interruptions break up the group",
            )

        #: Tag key this pool puts on explicit subnets whose ids are known only at deploy time.
        self.subnet_tag_key = f"{POOL_SUBNET_TAG_PREFIX}{Stack.of(self).stack_name}.{props.name}"
        if not subnets:
            Annotations.of(self).add_warning_v2(
                "eks-llm-stack:gpu-pool-subnets",
                f"pool '{props.name}': no subnets given, so nodes launch only in subnets tagged "
                f"{DISCOVERY_TAG}=<cluster name> — pass subnets=, or tag the subnets (ClusterNetwork does)",
            )
        else:
            with collecting(f"GpuNodePool '{props.name}'") as p:
                for i, subnet in enumerate(subnets):
                    if Token.is_unresolved(subnet.subnet_id) and not isinstance(subnet, ec2.Subnet):
                        p.add(
                            f"subnets[{i}]",
                            "is an imported subnet whose id is known only at deploy time, so it can be neither "
                            "selected by id nor tagged",
                            "import it with its literal id (ec2.Subnet.from_subnet_id(scope, id, 'subnet-...')), "
                            "or pass the ec2.Subnet constructs of the VPC",
                            subnet.node.path,
                        )
                    elif Token.is_unresolved(subnet.subnet_id):
                        Tags.of(subnet).add(self.subnet_tag_key, "1")
        self.node.add_validation(_RequiresDevicePlugins(self))

        # -- where: one zone when a placement group asks for it -------------------------
        self.subnets: tuple[ec2.ISubnet, ...] = tuple(subnets or ())
        self.zone: str | None = props.availability_zone
        single_zone = props.placement_group is not None or placement_group is not None
        if single_zone:
            choice = single_zone_subnets(self.subnets, availability_zone=props.availability_zone, pool=props.name)
            self.subnets, self.zone = choice.subnets, choice.zone
        elif props.availability_zone is not None and self.subnets:
            self.subnets = tuple(
                s
                for s in self.subnets
                if Token.is_unresolved(s.availability_zone) or s.availability_zone == props.availability_zone
            )

        # -- placement group and EFA security group --------------------------------------
        self.placement_group: PoolPlacementGroup | ec2.IPlacementGroup | None = placement_group
        if props.placement_group is not None:
            self.placement_group = PoolPlacementGroup(self, "PlacementGroup", spec=props.placement_group)
        self.efa_security_group: ec2.SecurityGroup | None = None
        if props.efa:
            sg = ec2.SecurityGroup(
                self,
                "EfaSecurityGroup",
                vpc=cluster.vpc,
                description=f"EFA traffic between the nodes of GPU pool {props.name}",
                # EFA's OS-bypass traffic must be allowed both ways between members; all other
                # egress comes from the cluster security group the nodes also carry.
                allow_all_outbound=False,
            )
            sg.add_ingress_rule(sg, ec2.Port.all_traffic(), "EFA: all traffic from pool members")
            sg.add_egress_rule(sg, ec2.Port.all_traffic(), "EFA: all traffic to pool members")
            # Selected by pool name AND cluster, so a same-named pool of another cluster never matches.
            Tags.of(sg).add(EFA_SECURITY_GROUP_TAG, props.name)
            Tags.of(sg).add(DISCOVERY_TAG, cluster.cluster_name)
            self.efa_security_group = sg

        # -- the manifests, applied once Karpenter's CRDs exist ---------------------------
        self.manifest: eks.KubernetesManifest | None = None
        if apply_manifests:
            self.manifest = eks.KubernetesManifest(
                self, "Manifest", cluster=cluster, manifest=self.manifests(), overwrite=True
            )
            self.manifest.node.add_dependency(*self.dependencies())

    def dependencies(self) -> list[Construct]:
        """What the manifests must be applied after: the Karpenter chart (CRDs) and the EFA group."""
        deps: list[Construct] = [self.karpenter.chart]
        if self.efa_security_group is not None:
            deps.append(self.efa_security_group)
        return deps

    def to_chart(self, app: Any, name: str | None = None) -> Any:
        """The manifests as a cdk8s chart in ``app`` (for GitOps output or a chart registry)."""
        import cdk8s

        chart = cdk8s.Chart(app, name or f"gpu-pool-{self.name}")
        for doc in self.manifests():
            obj = cdk8s.ApiObject(
                chart, doc["kind"], api_version=doc["apiVersion"], kind=doc["kind"], metadata=doc["metadata"]
            )
            obj.add_json_patch(cdk8s.JsonPatch.add("/spec", doc["spec"]))
        return chart

    # -- rendering -----------------------------------------------------------------------

    def manifests(self) -> list[dict[str, Any]]:
        """The EC2NodeClass and the NodePool (with CDK tokens for deploy-time values)."""
        return [self.node_class(), self.node_pool()]

    def node_labels(self) -> dict[str, str]:
        props = self.props
        labels = {
            **dict(props.labels),
            POOL_LABEL: props.name,
            WORKLOAD_LABEL: props.workload,
            AMI_FAMILY_LABEL: props.ami_family.lower(),
        }
        if props.efa:
            labels[EFA_LABEL] = "true"
        if props.device_plugin is not None and not props.device_plugin.is_default:
            labels[DEVICE_PLUGIN_CONFIG_LABEL] = props.name
        return labels

    def requirements(self) -> list[dict[str, Any]]:
        props = self.props
        reqs: list[dict[str, Any]] = [
            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
            {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
            {"key": CAPACITY_TYPE_LABEL, "operator": "In", "values": list(props.capacity_types)},
        ]
        if props.instance_types:
            reqs.append({"key": INSTANCE_TYPE_LABEL, "operator": "In", "values": list(props.instance_types)})
        if props.families:
            reqs.append({"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": list(props.families)})
        if not props.families and not props.instance_types:
            # GPU requirements alone: stay within the catalog's families, whose layouts we know.
            families = sorted({i.family for i in props.catalog_instances()})
            reqs.append({"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": families})
        gpu = props.gpu
        if gpu is not None:
            if gpu.name is not None:
                reqs.append(
                    {"key": "karpenter.k8s.aws/instance-gpu-name", "operator": "In", "values": [gpu.name.lower()]}
                )
            if gpu.min_count is not None:
                reqs.append({"key": GPU_COUNT_LABEL, "operator": "Gte", "values": [str(gpu.min_count)]})
            if gpu.max_count is not None:
                reqs.append({"key": GPU_COUNT_LABEL, "operator": "Lte", "values": [str(gpu.max_count)]})
            if gpu.min_memory_gib is not None:
                # Karpenter's label is MiB per GPU.
                mib = math.ceil(gpu.min_memory_gib * 1024)
                reqs.append({"key": "karpenter.k8s.aws/instance-gpu-memory", "operator": "Gte", "values": [str(mib)]})
        if self.zone is not None:
            reqs.append({"key": ZONE_LABEL, "operator": "In", "values": [self.zone]})
        return reqs

    def node_pool(self) -> dict[str, Any]:
        props = self.props
        d = props.disruption
        template_spec: dict[str, Any] = {
            "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": props.name},
            "requirements": self.requirements(),
            "taints": [{"key": GPU_TAINT_KEY, "value": GPU_TAINT_VALUE, "effect": GPU_TAINT_EFFECT}],
            "expireAfter": d.expire_after,
        }
        if d.termination_grace_period is not None:
            template_spec["terminationGracePeriod"] = d.termination_grace_period
        spec: dict[str, Any] = {
            "template": {"metadata": {"labels": self.node_labels()}, "spec": template_spec},
            "disruption": {
                "consolidationPolicy": d.consolidation_policy,
                "consolidateAfter": d.consolidate_after,
                "budgets": [budget_manifest(b) for b in d.budgets],
            },
        }
        limits: dict[str, str] = {}
        if props.limits.gpus is not None:
            limits[GPU_RESOURCE] = str(props.limits.gpus)
        if props.limits.cpu is not None:
            limits["cpu"] = str(props.limits.cpu)
        if limits:
            spec["limits"] = limits
        if props.weight is not None:
            spec["weight"] = props.weight
        return {
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodePool",
            "metadata": {"name": props.name, "labels": dict(MANAGED_BY)},
            "spec": spec,
        }

    def node_class(self) -> dict[str, Any]:
        props = self.props
        family = props.ami_family.lower()
        spec: dict[str, Any] = {
            "role": self.karpenter.node_role.role_name,
            # The alias picks the NVIDIA variant of the AMI for GPU instance types by itself.
            "amiSelectorTerms": [{"alias": f"{family}@{props.ami_version}"}],
            "subnetSelectorTerms": self._subnet_terms(),
            "securityGroupSelectorTerms": self._security_group_terms(),
            "blockDeviceMappings": self._block_devices(),
            # IMDSv2 only, and not reachable from pods (hop limit 1): pods use Pod Identity.
            "metadataOptions": {
                "httpEndpoint": "enabled",
                "httpProtocolIPv6": "disabled",
                "httpPutResponseHopLimit": 1,
                "httpTokens": "required",
            },
            "tags": {**props.node_tags, POOL_LABEL: props.name},
        }
        if props.efa:
            layout = self._efa_layout()
            spec["networkInterfaces"] = efa_network_interfaces(*layout)
        if self.placement_group is not None:
            spec["placementGroupSelector"] = {"name": self.placement_group.placement_group_name}
        if props.capacity_reservation_ids or props.capacity_reservation_tags:
            terms: list[dict[str, Any]] = [{"id": r} for r in props.capacity_reservation_ids]
            if props.capacity_reservation_tags:
                terms.append({"tags": dict(props.capacity_reservation_tags)})
            spec["capacityReservationSelectorTerms"] = terms
        return {
            "apiVersion": "karpenter.k8s.aws/v1",
            "kind": "EC2NodeClass",
            "metadata": {"name": props.name, "labels": dict(MANAGED_BY)},
            "spec": spec,
        }

    def _efa_layout(self) -> tuple[int, int]:
        # GpuNodePoolProps guarantees one layout among the pool's types (and EFA on all of them).
        inst = self.props.catalog_instances()[0]
        return inst.network_cards, inst.max_efa_interfaces

    def _subnet_terms(self) -> list[dict[str, Any]]:
        ids = [s.subnet_id for s in self.subnets]
        if ids and not any(Token.is_unresolved(i) for i in ids):
            return [{"id": i} for i in ids]
        if self.subnets:
            # Deploy-time ids (another stack's subnets): this pool tags them itself, with a literal key and
            # value (no reference back to this stack), and selects by that tag.
            return [{"tags": {self.subnet_tag_key: "1"}}]
        return [{"tags": {DISCOVERY_TAG: self.cluster.cluster_name}}]

    def _security_group_terms(self) -> list[dict[str, Any]]:
        terms: list[dict[str, Any]] = [{"tags": {CLUSTER_SECURITY_GROUP_TAG: self.cluster.cluster_name}}]
        terms += [{"id": sg} for sg in self.props.security_group_ids]
        if self.props.security_group_tags:
            terms.append({"tags": dict(self.props.security_group_tags)})
        if self.efa_security_group is not None:
            terms.append({"tags": {EFA_SECURITY_GROUP_TAG: self.props.name, DISCOVERY_TAG: self.cluster.cluster_name}})
        return terms

    def _block_devices(self) -> list[dict[str, Any]]:
        v = self.props.root_volume
        ebs: dict[str, Any] = {
            "volumeSize": f"{v.size_gib}Gi",
            "volumeType": "gp3",
            "iops": v.iops,
            "throughput": v.throughput_mibps,
            "encrypted": True,
            "deleteOnTermination": True,
        }
        if v.kms_key_id is not None:
            ebs["kmsKeyID"] = v.kms_key_id
        if self.props.ami_family == "Bottlerocket":
            # Bottlerocket: a small OS volume, and images / ephemeral storage on the data volume.
            os_volume = {"volumeSize": "4Gi", "volumeType": "gp3", "encrypted": True, "deleteOnTermination": True}
            if v.kms_key_id is not None:
                os_volume["kmsKeyID"] = v.kms_key_id
            return [{"deviceName": "/dev/xvda", "ebs": os_volume}, {"deviceName": "/dev/xvdb", "ebs": ebs}]
        return [{"deviceName": "/dev/xvda", "rootVolume": True, "ebs": ebs}]


def budget_manifest(budget: DisruptionBudget) -> dict[str, Any]:
    """One entry of a NodePool's ``spec.disruption.budgets``."""
    out: dict[str, Any] = {"nodes": budget.nodes}
    if budget.reasons:
        out["reasons"] = list(budget.reasons)
    if budget.schedule is not None:
        out["schedule"] = budget.schedule
    if budget.duration is not None:
        out["duration"] = budget.duration
    return out
