"""What the ops commands need to know about a profile, read through narrow adapters.

Preflight and the ephemeral commands check a handful of facts (GPU pools, secret names,
whether stateful resources are retained). They read them here, with ``getattr`` and sane
defaults, rather than from the profile models directly, so that the checks work with any
profile section that offers the fields below -- including sections that are still being
written -- and a test can state requirements without building a whole profile.

Field names read from a pool (first one present wins):

* name: ``name``
* instance types: ``instance_types`` | ``instance_type``
* capacity types: ``capacity_types`` | ``capacity_type`` (``on-demand``, ``spot``, ``reserved``)
* maximum size: ``max_vcpus`` | ``limits.cpu``; ``max_gpus`` | ``limits.gpus`` | ``limits.nvidia.com/gpu``
* zones: ``availability_zones`` | ``zones`` (else the network's zones)
* placement group: ``placement_group`` (truthy)
* reserved capacity: ``reserved`` (truthy), ``reserved`` in the capacity types, or
  ``capacity_reservation_ids``
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config import Profile
from ..config.gpu_pool import GpuNodePoolProps
from ..conventions import GPU_RESOURCE
from ..errors import ConfigError, Problem

if TYPE_CHECKING:
    from ..config import Profile

_ABSENT = object()


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
    """Secrets Manager names that must exist with a value. Default: none."""
    vpc_id: str | None = None
    """An imported VPC. Default: a new one (nothing to check)."""
    private_subnet_ids: tuple[str, ...] = ()
    network_zones: tuple[str, ...] = ()
    """Zones pinned by the network section. Default: the region's zones."""
    min_azs: int = 2
    """Zones an imported VPC's private subnets must span. Default: 2, the EKS minimum."""


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    """The first of ``names`` present on ``obj`` (attribute or mapping key), else ``default``."""
    for name in names:
        current: Any = obj
        found = True
        for part in name.split("."):
            value = current.get(part, _ABSENT) if isinstance(current, Mapping) else getattr(current, part, _ABSENT)
            if value is _ABSENT:
                found = False
                break
            current = value
        if found and current is not None:
            return current
    return default


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable):
        return tuple(str(v) for v in value)
    return (str(value),)


def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(str(value))
    except ValueError:
        return None


def pool_from(pool: Any, index: int) -> PoolRequirement:
    capacity = tuple(c.lower() for c in _strings(_get(pool, "capacity_types", "capacity_type", default=("on-demand",))))
    reservation_ids = _strings(_get(pool, "capacity_reservation_ids", default=()))
    limits = _get(pool, "limits", default={})
    max_gpus = _int_or_none(_get(pool, "max_gpus", default=None))
    if max_gpus is None:
        max_gpus = _int_or_none(_get(limits, "gpus", default=None))
    if max_gpus is None and isinstance(limits, Mapping):
        max_gpus = _int_or_none(limits.get(GPU_RESOURCE))
    max_vcpus = _int_or_none(_get(pool, "max_vcpus", default=None))
    if max_vcpus is None:
        max_vcpus = _int_or_none(_get(limits, "cpu", default=None))
    return PoolRequirement(
        name=str(_get(pool, "name", default=f"pool-{index}")),
        instance_types=_strings(_get(pool, "instance_types", "instance_type", default=())),
        capacity_types=tuple(c for c in capacity if c != "reserved") or ("on-demand",),
        max_vcpus=max_vcpus,
        max_gpus=max_gpus,
        zones=_strings(_get(pool, "availability_zones", "zones", default=())),
        placement_group=bool(_get(pool, "placement_group", default=False)),
        reserved=bool(_get(pool, "reserved", default=False)) or "reserved" in capacity or bool(reservation_ids),
        capacity_reservation_ids=reservation_ids,
    )


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


def pools_of(profile: Any) -> tuple[PoolRequirement, ...]:
    if isinstance(profile, Profile):
        # The validated profile: read the pools the plan builds (the same props the stacks use).
        return tuple(pool_requirement(props) for props in profile.compute.pool_props())
    pools = _get(profile, "compute.pools", "compute.gpu_pools", default=())
    return tuple(pool_from(p, i) for i, p in enumerate(pools or ()))


def secret_names_of(profile: Any) -> tuple[str, ...]:
    """Names of the Secrets Manager entries a profile expects to exist already."""
    secrets = _get(profile, "secrets", default=None)
    if secrets is None:
        return ()
    names: list[str] = []
    entries = _get(secrets, "entries", "items", default=None)
    if entries is None and isinstance(secrets, Mapping):
        entries = list(secrets.values())
    if isinstance(entries, Mapping):
        entries = list(entries.values())
    for entry in entries or ():
        if isinstance(entry, str):
            names.append(entry)
            continue
        # An entry the stack creates itself has no value until someone sets it, which is
        # exactly what the check reports; an entry that imports an existing secret names it.
        name = _get(entry, "secret_name", "existing_secret_name", "name", default=None)
        if name:
            names.append(str(name))
    names.extend(_strings(_get(secrets, "names", default=())))
    return tuple(dict.fromkeys(names))


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


def requirements_of(profile: Any) -> Requirements:
    """Read every preflight requirement from a validated profile."""
    network = _get(profile, "network", default=None)
    return Requirements(
        profile_name=str(_get(profile, "name", default="default")),
        account=_get(profile, "account", default=None),
        region=_get(profile, "region", default=None),
        kubernetes_version=str(_get(profile, "cluster.kubernetes_version", default="")),
        pools=pools_of(profile),
        secret_names=secret_names_of(profile),
        vpc_id=_get(network, "vpc_id", default=None),
        private_subnet_ids=_strings(_get(network, "private_subnet_ids", default=())),
        network_zones=_strings(_get(network, "availability_zones", default=())),
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
