"""What the ops commands need to know about a profile, read from its plan, typed.

Preflight checks a handful of facts (GPU pools with the instance types Karpenter may launch and
their limits, the secrets that must hold a value, an imported VPC); the ephemeral commands refuse a
profile that would keep stateful resources. Both read the validated :class:`~eks_llm_stack.config.Profile`
and the :class:`~eks_llm_stack.plan.PlatformPlan` the stacks are built from, so they see what
``cdk deploy`` would create. A test can still write :class:`Requirements` by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Profile
from ..config.gpu_pool import GpuNodePoolProps
from ..conventions import secret_name
from ..errors import ConfigError, Problem
from ..plan import PlatformPlan, plan_platform


@dataclass(frozen=True, kw_only=True)
class PoolRequirement:
    """The capacity one GPU pool may ask EC2 for."""

    name: str
    instance_types: tuple[str, ...]
    capacity_types: tuple[str, ...] = ("on-demand",)
    """Karpenter capacity types. Default: on-demand only."""
    max_vcpus: int | None = None
    """Upper bound on the pool's vCPUs. Default: derived from ``max_gpus``."""
    max_gpus: int | None = None
    """Upper bound on the pool's GPUs. Default: none; then ``max_vcpus`` must be set for the quota check."""
    zones: tuple[str, ...] = ()
    """Zones the pool may launch in. Default: every zone the network offers."""
    placement_group: bool = False
    """A cluster placement group, which pins the pool to a single zone. Default: none."""
    reserved: bool = False
    """Launch into capacity reservations / Capacity Blocks. Default: no."""
    capacity_reservation_ids: tuple[str, ...] = ()
    """Specific reservations to use. Default: any active reservation of the pool's instance types."""


@dataclass(frozen=True, kw_only=True)
class Requirements:
    """Everything preflight checks, extracted from a profile (or written by hand in a test)."""

    profile_name: str = "default"
    account: str | None = None
    """Expected account id. Default: any account."""
    region: str | None = None
    """Expected region. Default: whichever the environment names."""
    kubernetes_version: str
    pools: tuple[PoolRequirement, ...] = ()
    """GPU pools. Default: none (quota, offering and reservation checks pass trivially)."""
    secret_names: tuple[str, ...] = ()
    """Secrets Manager names (or ARNs) the stacks read but do not create: they must exist with a value.
    Default: none."""
    created_secret_names: tuple[str, ...] = ()
    """Secrets Manager names the Data stack creates without a value: set each after the first deploy.
    Default: none."""
    vpc_id: str | None = None
    """An imported VPC. Default: a new one (nothing to check)."""
    private_subnet_ids: tuple[str, ...] = ()
    network_zones: tuple[str, ...] = ()
    """Zones pinned by the network section. Default: the region's zones."""
    min_azs: int = 2
    """Zones an imported VPC's private subnets must span. Default: 2, the EKS minimum."""


def pool_requirement(props: GpuNodePoolProps) -> PoolRequirement:
    """The capacity of one planned pool, typed: presets applied and families resolved to the catalog's
    instance types (what Karpenter may launch), the GPU limit as the plan has it."""
    capacity = tuple(props.capacity_types)
    return PoolRequirement(
        name=props.name,
        instance_types=tuple(sorted(i.name for i in props.catalog_instances())),
        capacity_types=tuple(c for c in capacity if c != "reserved") or ("on-demand",),
        max_vcpus=props.limits.cpu,
        max_gpus=props.limits.gpus,
        zones=(props.availability_zone,) if props.availability_zone else (),
        placement_group=props.placement_group is not None,
        reserved="reserved" in capacity or bool(props.capacity_reservation_ids),
        capacity_reservation_ids=tuple(props.capacity_reservation_ids),
    )


def pools_of(plan: PlatformPlan) -> tuple[PoolRequirement, ...]:
    """Every planned pool (the same props the Platform stack builds its NodePools from)."""
    return tuple(pool_requirement(props) for props in plan.pools)


def secret_names_of(plan: PlatformPlan) -> tuple[str, ...]:
    """Secrets the stacks import rather than create: the Grafana admin login, when the profile names one."""
    grafana = plan.grafana_admin_secret
    return (grafana.name,) if grafana is not None and not grafana.create else ()


def created_secret_names_of(plan: PlatformPlan) -> tuple[str, ...]:
    """Secrets the Data stack creates, empty, as ``<prefix>/<name>``: the operator sets their values.
    (The generated Grafana login is created with a value.)"""
    if not plan.external_secrets:
        return ()
    profile = plan.profile
    return tuple(secret_name(profile.prefix, name) for name in profile.secrets.names)


def stateful_kept(profile: Profile) -> tuple[tuple[str, object, str, str], ...]:
    """``(field, value, what outlives the stack, fix)`` for every setting that keeps data after a delete.

    An ephemeral profile's Data stack DESTROYs the file systems, the key and the secrets; these
    settings make something outlive it anyway (and bill, or block the next delete).
    """
    found: list[tuple[str, object, str, str]] = []
    efs = profile.storage.efs
    if efs is not None and efs.backup:
        found.append(
            (
                "storage.efs.backup",
                efs.backup,
                "AWS Backup recovery points of the EFS file system outlive every ephemeral cluster (they bill)",
                "set 'storage.efs.backup: false' in the ephemeral profile",
            )
        )
    fsx = profile.storage.fsx
    if fsx is not None and fsx.data_repository is not None and fsx.data_repository.new_bucket:
        found.append(
            (
                "storage.fsx.data_repository.new_bucket",
                True,
                "the new model bucket is versioned and not emptied on delete: the Data stack's delete fails "
                "once it holds an object, and the bucket stays",
                "point 'storage.fsx.data_repository.s3_path' at an existing bucket instead",
            )
        )
    return tuple(found)


def stateful_retain_fields(profile: Profile) -> tuple[str, ...]:
    """Dotted paths of profile fields that keep stateful resources after their stack is deleted."""
    return tuple(f for f, *_ in stateful_kept(profile))


def requirements_of(profile: Profile, plan: PlatformPlan | None = None) -> Requirements:
    """Every preflight requirement of a validated profile, read from its plan (computed here if not given;
    a profile that synth would reject raises the same ``ConfigError``)."""
    plan = plan if plan is not None else plan_platform(profile)
    network = profile.network
    return Requirements(
        profile_name=profile.name,
        account=profile.account,
        region=profile.region,
        kubernetes_version=profile.cluster.kubernetes_version,
        pools=pools_of(plan),
        secret_names=secret_names_of(plan),
        created_secret_names=created_secret_names_of(plan),
        vpc_id=network.vpc_id,
        private_subnet_ids=tuple(network.private_subnet_ids),
        network_zones=tuple(network.availability_zones),
    )


def refuse_for_ephemeral(profile: Profile) -> None:
    """Raise :class:`ConfigError` unless the profile may be used for a throw-away cluster."""
    problems = []
    if not profile.ephemeral:
        problems.append(
            Problem(
                "ephemeral",
                "the profile is not ephemeral; 'ephemeral up' creates throw-away clusters only",
                "use an ephemeral profile (-p ci-ephemeral), or set 'ephemeral: true' in this profile",
                profile.ephemeral,
            )
        )
    for path, value, what, fix in stateful_kept(profile):
        problems.append(Problem(path, f"stateful resources would be kept: {what}", fix, value))
    if problems:
        raise ConfigError(f"profile '{profile.name}' cannot be used for an ephemeral cluster", problems)
