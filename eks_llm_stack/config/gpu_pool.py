"""Karpenter GPU node pools as plain data: :class:`GpuNodePoolProps` and its parts, presets and checks.

A GPU pool is described once, as :class:`GpuNodePoolProps` (a frozen dataclass, no AWS types),
and validated once, in its ``__post_init__``: the profile section
(:class:`~eks_llm_stack.config.compute.GpuPoolConfig`) merges a preset with the YAML into these
props, and :class:`~eks_llm_stack.constructs.gpu_node_pool.GpuNodePool` takes them from Python.
Keeping them free of ``aws_cdk`` lets ``load_profile`` reject a bad pool without importing the CDK.

Checks that need the instance catalog (EFA support, network-card layout, GPU requirements)
run here too; checks that need the construct tree (subnets, availability zones, tokens) run
in the construct, and so does the rendering into Karpenter manifests.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..conventions import POOL_LABEL, WORKLOAD_LABEL
from ..errors import Problem, Problems, collecting
from ..naming import LABEL_KEY_FIX, LABEL_VALUE_FIX, is_dns_label, is_label_key, is_label_value

CapacityType = Literal["spot", "on-demand", "reserved"]
AmiFamily = Literal["AL2023", "Bottlerocket"]
Workload = Literal["inference", "training", "custom"]
ConsolidationPolicy = Literal["WhenEmpty", "WhenEmptyOrUnderutilized"]
BudgetReason = Literal["Empty", "Drifted", "Underutilized"]
PlacementStrategy = Literal["cluster", "partition", "spread"]
MigStrategy = Literal["none", "single", "mixed"]

# Formats Karpenter v1.14 enforces (karpenter.sh_nodepools.yaml); checked here so that a typo
# is a synth-time error rather than a rejected manifest half-way through a deploy.
_DURATION = re.compile(r"^(([0-9]+(s|m|h))+|Never)$")
_GRACE = re.compile(r"^([0-9]+(s|m|h))+$")
_BUDGET_DURATION = re.compile(r"^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$")
_BUDGET_NODES = re.compile(r"^((100|[0-9]{1,2})%|[0-9]+)$")
_CRON_MACRO = re.compile(r"^@(annually|yearly|monthly|weekly|daily|midnight|hourly)$")
_RESERVATION_ID = re.compile(r"^cr-[0-9a-z]+$")
_SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-z]+$")
_AZ = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d[a-z]$")
#: Label domains Karpenter reserves for itself (user labels there are rejected by the CRD).
_RESTRICTED_LABEL_DOMAINS = ("karpenter.sh", "karpenter.k8s.aws", "kubernetes.io", "k8s.io")
#: GPUs with Multi-Instance GPU support among the catalog's (A10G, L4 and L40S have none).
MIG_CAPABLE_GPUS = frozenset({"A100", "H100", "H200"})


def _is_token(value: str) -> bool:
    """A CDK token (a value CloudFormation only knows at deploy time): not checkable here."""
    return "${Token[" in value


@dataclass(frozen=True, kw_only=True)
class DisruptionBudget:
    """A Karpenter disruption budget: at most ``nodes`` disrupted at once.

    ``nodes`` — a count (``"1"``) or a percentage (``"10%"``); ``"0"`` blocks disruption
    (default ``"10%"``). ``schedule`` — a UTC cron expression when the budget starts applying
    (default: always); needs ``duration`` — how long it applies each time (``"8h"``, ``"1h30m"``).
    ``reasons`` — the disruption reasons it limits, of Empty, Drifted, Underutilized
    (default: all).
    """

    nodes: str = "10%"
    schedule: str | None = None
    duration: str | None = None
    reasons: tuple[BudgetReason, ...] = ()

    @classmethod
    def business_hours_freeze(cls, *, schedule: str = "0 9 * * mon-fri", duration: str = "8h") -> DisruptionBudget:
        """No voluntary disruption from ``schedule`` for ``duration`` (default 09:00-17:00 UTC, Mon-Fri)."""
        return cls(nodes="0", schedule=schedule, duration=duration)

    def check(self, p: Problems, where: str) -> None:
        p.check(
            bool(_BUDGET_NODES.match(self.nodes)),
            f"{where}.nodes",
            self.nodes,
            "is not a node count or percentage",
            "write a whole number ('0', '2') or a percentage ('10%')",
        )
        if self.schedule is not None and self.duration is None:
            p.add(
                f"{where}.duration",
                "a budget with a schedule needs a duration (Karpenter rejects one without)",
                f"add duration, e.g. duration: 8h for a freeze starting at '{self.schedule}'",
            )
        if self.duration is not None and self.schedule is None:
            p.add(
                f"{where}.schedule",
                "a budget with a duration needs a schedule",
                "add schedule (UTC cron), e.g. '0 9 * * mon-fri'",
            )
        if self.schedule is not None:
            fields = self.schedule.split()
            p.check(
                bool(_CRON_MACRO.match(self.schedule)) or len(fields) == 5,
                f"{where}.schedule",
                self.schedule,
                "is not a cron expression",
                "use five fields 'minute hour day month weekday' (UTC), e.g. '0 9 * * mon-fri', or @daily",
            )
        if self.duration is not None:
            p.check(
                bool(_BUDGET_DURATION.match(self.duration)),
                f"{where}.duration",
                self.duration,
                "is not a budget duration",
                "use hours and/or minutes: '8h', '90m', '1h30m'",
            )


@dataclass(frozen=True, kw_only=True)
class Disruption:
    """When Karpenter may remove or replace nodes of the pool.

    ``consolidation_policy`` — WhenEmpty or WhenEmptyOrUnderutilized (default, packs pods onto
    fewer nodes). ``consolidate_after`` — wait after the last pod change (default ``"5m"``).
    ``expire_after`` — replace nodes older than this (default ``"720h"``; ``"Never"`` keeps them).
    ``termination_grace_period`` — longest a draining node waits for its pods (default: unset,
    wait for them). ``budgets`` — default one budget of 10 %.
    """

    consolidation_policy: ConsolidationPolicy = "WhenEmptyOrUnderutilized"
    consolidate_after: str = "5m"
    expire_after: str = "720h"
    termination_grace_period: str | None = None
    budgets: tuple[DisruptionBudget, ...] = (DisruptionBudget(),)

    def check(self, p: Problems, where: str) -> None:
        for name in ("consolidate_after", "expire_after"):
            value = getattr(self, name)
            p.check(
                bool(_DURATION.match(value)),
                f"{where}.{name}",
                value,
                "is not a duration",
                "use seconds, minutes or hours ('30s', '5m', '720h') or 'Never'",
            )
        if self.termination_grace_period is not None:
            p.check(
                bool(_GRACE.match(self.termination_grace_period)),
                f"{where}.termination_grace_period",
                self.termination_grace_period,
                "is not a duration",
                "use seconds, minutes or hours, e.g. '1h'",
            )
        p.check(
            len(self.budgets) <= 50, f"{where}.budgets", len(self.budgets), "has more than 50 budgets", "merge budgets"
        )
        for i, budget in enumerate(self.budgets):
            budget.check(p, f"{where}.budgets[{i}]")


@dataclass(frozen=True, kw_only=True)
class GpuRequirements:
    """Select instances by GPU instead of (or on top of) families and types.

    ``name`` — GPU model, as in the catalog (``"L4"``, ``"A10G"``, ``"H100"``; default any).
    ``min_count`` / ``max_count`` — GPUs per instance (default unbounded).
    ``min_memory_gib`` — memory per GPU, GiB as EC2 reports it (default unbounded).
    """

    name: str | None = None
    min_count: int | None = None
    max_count: int | None = None
    min_memory_gib: float | None = None

    def matches(self, instance: Any) -> bool:
        if self.name is not None and instance.gpu.name.lower() != self.name.lower():
            return False
        if self.min_count is not None and instance.gpu_count < self.min_count:
            return False
        if self.max_count is not None and instance.gpu_count > self.max_count:
            return False
        return not (self.min_memory_gib is not None and instance.gpu_memory_gib < self.min_memory_gib)


@dataclass(frozen=True, kw_only=True)
class RootVolume:
    """The node's EBS volume for images and ephemeral storage: gp3, always encrypted.

    ``size_gib`` default 200 (LLM serving images are 10-20 GB). ``iops`` default 3000,
    ``throughput_mibps`` default 125 (the gp3 baseline). ``kms_key_id`` default: the
    account's EBS default key.
    """

    size_gib: int = 200
    iops: int = 3000
    throughput_mibps: int = 125
    kms_key_id: str | None = None

    def check(self, p: Problems, where: str) -> None:
        p.check(
            20 <= self.size_gib <= 16384,
            f"{where}.size_gib",
            self.size_gib,
            "is outside gp3's range for a node",
            "use 20-16384 GiB",
        )
        p.check(3000 <= self.iops <= 80000, f"{where}.iops", self.iops, "is outside gp3's range", "use 3000-80000")
        p.check(
            self.iops <= 500 * self.size_gib,
            f"{where}.iops",
            self.iops,
            f"exceeds gp3's 500 IOPS per GiB for {self.size_gib} GiB",
            "lower iops or raise size_gib",
        )
        p.check(
            125 <= self.throughput_mibps <= 2000,
            f"{where}.throughput_mibps",
            self.throughput_mibps,
            "is outside gp3's range",
            "use 125-2000 MiB/s",
        )


@dataclass(frozen=True, kw_only=True)
class PlacementGroupSpec:
    """An EC2 placement group created for the pool.

    ``strategy`` — cluster (default: one AZ, lowest latency, what EFA training wants),
    partition (large fleets, failure isolation) or spread (HA, at most 7 instances per AZ).
    ``partitions`` — partition strategy only, 1-7 (default 2 there).
    """

    strategy: PlacementStrategy = "cluster"
    partitions: int | None = None

    def check(self, p: Problems, where: str) -> None:
        if self.partitions is not None:
            p.check(
                self.strategy == "partition",
                f"{where}.partitions",
                self.partitions,
                f"only applies to the partition strategy, not {self.strategy}",
                "remove partitions or set strategy: partition",
            )
            p.check(
                1 <= self.partitions <= 7,
                f"{where}.partitions",
                self.partitions,
                "is outside 1-7",
                "use 1-7 partitions",
            )


@dataclass(frozen=True, kw_only=True)
class GpuSharing:
    """How the NVIDIA device plugin advertises this pool's GPUs.

    ``time_slicing_replicas`` — each GPU is advertised this many times (default 1: no
    sharing; time-slicing gives no memory isolation). ``mig_strategy`` — none (the default and
    the only value accepted: this library creates no MIG partitions, see :meth:`check`).
    """

    time_slicing_replicas: int = 1
    mig_strategy: MigStrategy = "none"

    def check(self, p: Problems, where: str) -> None:
        p.check(
            1 <= self.time_slicing_replicas <= 64,
            f"{where}.time_slicing_replicas",
            self.time_slicing_replicas,
            "is outside 1-64",
            "use 1 (no sharing) up to 64 replicas per GPU",
        )
        # MIG is refused rather than half-done: the device plugin's migStrategy only advertises MIG
        # devices that already exist, and nothing here creates them (the EKS NVIDIA AMIs boot with MIG
        # off), so pods asking for nvidia.com/mig-* would stay Pending for ever. One check, run by the
        # pool (profile field compute.pools[i].device_plugin) and by DevicePluginsProps alike.
        p.check(
            self.mig_strategy == "none",
            f"{where}.mig_strategy",
            self.mig_strategy,
            "MIG partitions are not created by this library, so the device plugin would advertise none and pods "
            "requesting nvidia.com/mig-* would never schedule",
            "use mig_strategy: none (time_slicing_replicas shares a GPU without isolation), or run NVIDIA's MIG "
            "manager yourself and install the device plugin outside this library",
        )

    @property
    def is_default(self) -> bool:
        return self.time_slicing_replicas == 1 and self.mig_strategy == "none"


@dataclass(frozen=True, kw_only=True)
class PoolLimits:
    """Most capacity the pool may hold. ``gpus`` default 16; ``cpu`` (vCPUs) default unlimited."""

    gpus: int | None = 16
    cpu: int | None = None

    def check(self, p: Problems, where: str) -> None:
        for name in ("gpus", "cpu"):
            value = getattr(self, name)
            p.check(
                value is None or value >= 1,
                f"{where}.{name}",
                value,
                "must be at least 1",
                "raise it, or leave it out for no limit",
            )


@dataclass(frozen=True, kw_only=True)
class GpuNodePoolProps:
    """One Karpenter GPU pool: an EC2NodeClass and a NodePool named ``name``.

    Start from :meth:`inference` or :meth:`training` and adjust with ``dataclasses.replace``.

    ``name`` — NodePool / EC2NodeClass name and the value of the pool label (required).
    ``workload`` — inference, training or custom (default custom): the workload label.
    ``families`` — EC2 families (``("g6", "g6e")``; default: any catalog family that meets ``gpu``).
    ``instance_types`` — exact sizes (default: any size of the families).
    ``gpu`` — GPU requirements (default none).
    ``capacity_types`` — of spot, on-demand, reserved (default ``("on-demand",)``).
    ``capacity_reservation_ids`` / ``capacity_reservation_tags`` — ODCRs or Capacity Blocks
    to launch into; required with, and only with, ``reserved`` (default none).
    ``ami_family`` — AL2023 (default) or Bottlerocket; the NVIDIA variant is picked by Karpenter.
    ``ami_version`` — alias version (default ``"latest"``; pin one such as ``"v20250403"`` in production).
    ``root_volume`` — default 200 GiB gp3, encrypted. ``labels`` — extra node labels (default none).
    ``limits`` — default 16 GPUs. ``disruption`` — default :class:`Disruption` ().
    ``weight`` — 1-100, higher pools are tried first (default unset = 0).
    ``efa`` — attach every EFA interface the instance has (default False).
    ``placement_group`` — create one for the pool (default none).
    ``availability_zone`` — restrict the pool to one AZ (default: any; needed, or implied by the
    subnets, with a placement group). ``security_group_ids`` — extra node security groups,
    e.g. the storage-client group (default none). ``device_plugin`` — time-slicing / MIG for
    this pool's GPUs (default: the device plugin's defaults). ``node_tags`` — EC2 tags on every
    instance and volume Karpenter launches for the pool, e.g. the ephemeral-environment tags that let
    teardown find leftovers (default: only the pool tag).
    """

    name: str
    workload: Workload = "custom"
    families: tuple[str, ...] | None = None
    instance_types: tuple[str, ...] = ()
    gpu: GpuRequirements | None = None
    capacity_types: tuple[CapacityType, ...] = ("on-demand",)
    capacity_reservation_ids: tuple[str, ...] = ()
    capacity_reservation_tags: Mapping[str, str] = field(default_factory=dict)
    ami_family: AmiFamily = "AL2023"
    ami_version: str = "latest"
    root_volume: RootVolume = RootVolume()
    labels: Mapping[str, str] = field(default_factory=dict)
    limits: PoolLimits = PoolLimits()
    disruption: Disruption = Disruption()
    weight: int | None = None
    efa: bool = False
    placement_group: PlacementGroupSpec | None = None
    availability_zone: str | None = None
    security_group_ids: tuple[str, ...] = ()
    security_group_tags: Mapping[str, str] = field(default_factory=dict)
    device_plugin: GpuSharing | None = None
    node_tags: Mapping[str, str] = field(default_factory=dict)

    # -- presets -------------------------------------------------------------------------

    @classmethod
    def inference(
        cls,
        name: str = "inference",
        *,
        families: tuple[str, ...] | None = ("g6", "g6e", "g5"),
        instance_types: tuple[str, ...] = (),
        gpu: GpuRequirements | None = None,
        capacity_types: tuple[CapacityType, ...] = ("spot", "on-demand"),
        max_gpus: int = 16,
        weight: int | None = None,
        freeze_schedule: str | None = "0 9 * * mon-fri",
        freeze_duration: str = "8h",
        security_group_ids: tuple[str, ...] = (),
    ) -> GpuNodePoolProps:
        """G5/G6/G6e serving capacity: spot with on-demand, consolidated when underused,
        never disrupted voluntarily during business hours (``freeze_schedule``, UTC; None: no freeze)."""
        budgets: tuple[DisruptionBudget, ...] = (DisruptionBudget(nodes="10%"),)
        if freeze_schedule is not None:
            budgets += (DisruptionBudget.business_hours_freeze(schedule=freeze_schedule, duration=freeze_duration),)
        return cls(
            name=name,
            workload="inference",
            families=families,
            instance_types=instance_types,
            gpu=gpu,
            capacity_types=capacity_types,
            limits=PoolLimits(gpus=max_gpus),
            disruption=Disruption(
                consolidation_policy="WhenEmptyOrUnderutilized", consolidate_after="10m", budgets=budgets
            ),
            weight=weight,
            security_group_ids=security_group_ids,
        )

    @classmethod
    def training(
        cls,
        name: str = "training",
        *,
        instance_types: tuple[str, ...] = ("p5.48xlarge",),
        capacity_types: tuple[CapacityType, ...] = ("on-demand",),
        capacity_reservation_ids: tuple[str, ...] = (),
        capacity_reservation_tags: Mapping[str, str] | None = None,
        max_gpus: int = 64,
        efa: bool = True,
        placement_group: PlacementGroupSpec | None = PlacementGroupSpec(),
        availability_zone: str | None = None,
        security_group_ids: tuple[str, ...] = (),
    ) -> GpuNodePoolProps:
        """P4d/P5 training capacity: on-demand or reserved, every EFA interface, a cluster
        placement group, and no consolidation of busy nodes (WhenEmpty, never expired)."""
        return cls(
            name=name,
            workload="training",
            instance_types=instance_types,
            capacity_types=capacity_types,
            capacity_reservation_ids=capacity_reservation_ids,
            capacity_reservation_tags=dict(capacity_reservation_tags or {}),
            root_volume=RootVolume(size_gib=500, iops=6000, throughput_mibps=500),
            limits=PoolLimits(gpus=max_gpus),
            disruption=Disruption(
                consolidation_policy="WhenEmpty",
                consolidate_after="30m",
                expire_after="Never",
                budgets=(DisruptionBudget(nodes="1"),),
            ),
            efa=efa,
            placement_group=placement_group,
            availability_zone=availability_zone,
            security_group_ids=security_group_ids,
        )

    # -- validation ----------------------------------------------------------------------

    def __post_init__(self) -> None:
        with collecting(f"GpuNodePoolProps '{self.name}'") as p:
            self.check(p)

    def check(self, p: Problems) -> None:
        """Record every problem of these props on ``p``."""
        p.check(
            is_dns_label(self.name),
            "name",
            self.name,
            "is not a valid pool name",
            "use 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit",
        )
        if self.families is not None and not self.families:
            p.add(
                "families",
                "is empty: the pool could launch nothing",
                "name at least one family, e.g. ['g6', 'g6e'], or leave it out",
                self.families,
            )
        self._check_capacity(p)
        p.check(
            self.ami_version == "latest" or bool(re.fullmatch(r"v\d{8}|\d+\.\d+\.\d+", self.ami_version)),
            "ami_version",
            self.ami_version,
            "is not an AMI alias version",
            "use 'latest', an AL2023 release such as 'v20250403', or a Bottlerocket release such as '1.38.0'",
        )
        self.root_volume.check(p, "root_volume")
        self.limits.check(p, "limits")
        self.disruption.check(p, "disruption")
        if self.weight is not None:
            p.check(
                1 <= self.weight <= 100,
                "weight",
                self.weight,
                "is outside 1-100",
                "use 1-100 (higher pools are tried first)",
            )
        if self.placement_group is not None:
            self.placement_group.check(p, "placement_group")
        if self.availability_zone is not None and not _is_token(self.availability_zone):
            p.check(
                bool(_AZ.match(self.availability_zone)),
                "availability_zone",
                self.availability_zone,
                "is not an availability zone name",
                "use a zone name such as us-east-1a",
            )
        empty_tags = [k for k, v in self.security_group_tags.items() if not k or not v]
        p.check(
            not empty_tags,
            "security_group_tags",
            empty_tags,
            "has empty keys or values",
            "give every tag a key and a value",
        )
        bad_sgs = [s for s in self.security_group_ids if not _is_token(s) and not _SECURITY_GROUP_ID.match(s)]
        p.check(
            not bad_sgs,
            "security_group_ids",
            bad_sgs,
            "are not security group ids",
            "use ids like sg-0123456789abcdef0",
        )
        self._check_labels(p)
        if self.device_plugin is not None:
            self.device_plugin.check(p, "device_plugin")
            p.check(
                self.ami_family != "Bottlerocket" or self.device_plugin.is_default,
                "device_plugin",
                self.device_plugin,
                "Bottlerocket runs its own NVIDIA device plugin, configured in the OS, not by this library",
                "use ami_family: AL2023 for time-slicing or MIG, or remove device_plugin",
            )
        self._check_catalog(p)

    def _check_capacity(self, p: Problems) -> None:
        if not p.check(
            bool(self.capacity_types),
            "capacity_types",
            self.capacity_types,
            "is empty",
            "use spot, on-demand and/or reserved",
        ):
            return
        p.check(
            len(set(self.capacity_types)) == len(self.capacity_types),
            "capacity_types",
            self.capacity_types,
            "lists a capacity type twice",
            "list each once",
        )
        reserved = "reserved" in self.capacity_types
        has_reservation = bool(self.capacity_reservation_ids or self.capacity_reservation_tags)
        if reserved and not has_reservation:
            p.add(
                "capacity_reservation_ids",
                "capacity type 'reserved' needs the reservations to launch into",
                "give capacity_reservation_ids (cr-...) or capacity_reservation_tags of your ODCRs / Capacity Blocks",
            )
        if has_reservation and not reserved:
            p.add(
                "capacity_types",
                "capacity reservations are given but 'reserved' is not a capacity type, so they would never be used",
                "add 'reserved' to capacity_types, or remove the reservations",
                self.capacity_types,
            )
        bad = [r for r in self.capacity_reservation_ids if not _RESERVATION_ID.match(r)]
        p.check(
            not bad,
            "capacity_reservation_ids",
            bad,
            "are not capacity reservation ids",
            "use ids like cr-0123456789abcdef0",
        )
        empty = [k for k, v in self.capacity_reservation_tags.items() if not k or not v]
        p.check(
            not empty,
            "capacity_reservation_tags",
            empty,
            "has empty keys or values",
            "give every tag a key and a value",
        )

    def _check_labels(self, p: Problems) -> None:
        for key, value in self.labels.items():
            where = f"labels.{key}"
            if not is_label_key(key):
                p.add(where, "is not a valid label key", LABEL_KEY_FIX, key)
                continue
            domain = key.split("/", 1)[0] if "/" in key else ""
            if any(domain == d or domain.endswith("." + d) for d in _RESTRICTED_LABEL_DOMAINS):
                p.add(
                    where,
                    f"uses the domain '{domain}', which Kubernetes / Karpenter reserve",
                    "use a domain of your own, e.g. example.com/team",
                    key,
                )
            if key in (POOL_LABEL, WORKLOAD_LABEL):
                p.add(where, "is set by the pool itself", "remove it (use name / workload instead)", key)
            p.check(is_label_value(value), where, value, "is not a valid label value", LABEL_VALUE_FIX)

    def _check_catalog(self, p: Problems) -> None:
        from ..catalog import FAMILIES, INSTANCES

        unknown_families = [f for f in self.families or () if f not in FAMILIES]
        p.check(
            not unknown_families,
            "families",
            unknown_families,
            "are not in the GPU instance catalog",
            f"use families from: {', '.join(FAMILIES)}",
        )
        unknown_types = [t for t in self.instance_types if t not in INSTANCES]
        p.check(
            not unknown_types,
            "instance_types",
            unknown_types,
            "are not in the GPU instance catalog",
            f"use sizes of {', '.join(FAMILIES)}, e.g. g6.xlarge or p5.48xlarge",
        )
        if self.gpu is not None and self.gpu.name is not None:
            names = sorted({i.gpu.name for i in INSTANCES.values()})
            p.check(
                self.gpu.name.lower() in {n.lower() for n in names},
                "gpu.name",
                self.gpu.name,
                "is not a GPU of the catalog",
                f"use one of {', '.join(names)}",
            )
        if unknown_families or unknown_types or (self.families is not None and not self.families):
            return
        candidates = self.catalog_candidates(apply_gpu=False)
        matching = self.catalog_instances()
        if self.gpu is not None and not matching:
            p.add(
                "gpu",
                f"no catalog instance type among {len(candidates)} candidates has these GPUs",
                "loosen min_count / max_count / min_memory_gib, or widen families / instance_types "
                "(e.g. min_memory_gib 80 needs p4de, p5, p5e or p5en)",
                _gpu_summary(self.gpu),
            )
            return
        if self.families and self.instance_types:
            outside = [t for t in self.instance_types if INSTANCES[t].family not in self.families]
            p.check(
                not outside,
                "instance_types",
                outside,
                "are not of the pool's families, so they could never launch",
                "add their families or remove them",
            )
        if self.efa:
            no_efa = sorted(i.name for i in matching if not i.efa_supported)
            if no_efa:
                p.add(
                    "efa",
                    f"EFA is on but {', '.join(no_efa[:6])}{' ...' if len(no_efa) > 6 else ''} have no EFA",
                    "pin instance_types to EFA sizes (e.g. p5.48xlarge, p4d.24xlarge, g6e.48xlarge), or set efa: false",
                    True,
                )
            else:
                layouts = {(i.network_cards, i.max_efa_interfaces) for i in matching}
                if len(layouts) > 1:
                    p.add(
                        "instance_types",
                        "EFA interfaces are set per pool, but these types have different network-card layouts "
                        f"({', '.join(sorted(i.name for i in matching))})",
                        "pin instance_types to sizes with the same layout, e.g. only p5.48xlarge, "
                        "or split them into pools",
                        self.instance_types or self.families,
                    )

    # -- derived -------------------------------------------------------------------------

    def catalog_candidates(self, *, apply_gpu: bool = True) -> list[Any]:
        """Catalog entries the pool's families and types allow (and its GPU requirements, with ``apply_gpu``)."""
        from ..catalog import INSTANCES

        found = list(INSTANCES.values())
        if self.instance_types:
            found = [i for i in found if i.name in self.instance_types]
        if self.families:
            found = [i for i in found if i.family in self.families]
        if apply_gpu and self.gpu is not None:
            found = [i for i in found if self.gpu.matches(i)]
        return found

    def catalog_instances(self) -> list[Any]:
        """The catalog instance types this pool may launch."""
        return self.catalog_candidates(apply_gpu=True)

    def warnings(self) -> list[str]:
        """Legal but risky combinations, reported as synth-time warnings."""
        out: list[str] = []
        if self.placement_group is not None and "spot" in self.capacity_types:
            out.append(
                f"pool '{self.name}': spot capacity with a placement group — spot interruptions break up the group "
                "and a cluster placement group often has no spot capacity; use on-demand or reserved for training"
            )
        if self.placement_group is not None and "reserved" in self.capacity_types:
            out.append(
                f"pool '{self.name}': a placement group forced on an ODCR or Capacity Block that was not reserved in "
                "that group fails with InsufficientInstanceCapacity; "
                "drop the placement group unless the reservation is in it"
            )
        return out


def _gpu_summary(gpu: GpuRequirements) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(gpu).items() if v is not None}


def problems_of(props: GpuNodePoolProps) -> list[Problem]:
    """Every problem of ``props`` (empty when valid); for callers that collect across pools."""
    p = Problems("GpuNodePoolProps")
    props.check(p)
    return p.problems
