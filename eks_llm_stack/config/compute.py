"""Profile section ``compute``: the YAML face of the Karpenter GPU pools.

A pool is described once, as :class:`~eks_llm_stack.config.gpu_pool.GpuNodePoolProps` (plain data,
checked in its ``__post_init__``). This module only reads the profile's mapping: a ``preset`` supplies
the props, every key the YAML sets overrides it, and the merged props are validated once. The pydantic
models here hold no default of their own: each field's default is read from the dataclass field it
mirrors, so the two cannot drift (``tests/test_gpu_pool_mirror.py``).

The props and their parts used to live here; they are re-exported so ``eks_llm_stack.config.compute``
imports keep working for one release (new code imports :mod:`eks_llm_stack.config.gpu_pool`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from ..errors import ConfigError, ProblemsError
from .base import StrictModel, fail
from .gpu_pool import (
    MIG_CAPABLE_GPUS,
    AmiFamily,
    BudgetReason,
    CapacityType,
    ConsolidationPolicy,
    Disruption,
    DisruptionBudget,
    GpuNodePoolProps,
    GpuRequirements,
    GpuSharing,
    MigStrategy,
    PlacementGroupSpec,
    PlacementStrategy,
    PoolLimits,
    RootVolume,
    Workload,
    problems_of,
)

__all__ = [
    "MIG_CAPABLE_GPUS",
    "AmiFamily",
    "BudgetConfig",
    "BudgetReason",
    "CapacityType",
    "ComputeConfig",
    "ConsolidationPolicy",
    "DevicePluginConfig",
    "Disruption",
    "DisruptionBudget",
    "DisruptionConfig",
    "GpuNodePoolProps",
    "GpuPoolConfig",
    "GpuRequirements",
    "GpuRequirementsConfig",
    "GpuSharing",
    "LimitsConfig",
    "MigStrategy",
    "PlacementGroupConfig",
    "PlacementGroupSpec",
    "PlacementStrategy",
    "PoolLimits",
    "RootVolume",
    "RootVolumeConfig",
    "Workload",
    "problems_of",
]


def mirrored(target: type, name: str, **field_args: Any) -> Any:
    """A pydantic field whose default is ``target.name``'s dataclass default (required if it has none).

    The value is written once, on the dataclass; the YAML model only points at it.
    """
    spec = {f.name: f for f in dataclasses.fields(target)}[name]
    if spec.default_factory is not dataclasses.MISSING:
        return Field(default_factory=spec.default_factory, **field_args)
    if spec.default is dataclasses.MISSING:
        return Field(**field_args)
    return Field(default=spec.default, **field_args)


class _Section(StrictModel):
    """A profile mapping that overrides only the fields it sets on a props dataclass.

    Nested sections default to ``None`` (or ``()`` for a list of them): "keep the preset's".
    """

    _target: ClassVar[type[Any]]

    def apply(self, base: Any | None) -> Any:
        base = base if base is not None else self._target()
        changes: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            current = getattr(base, name)
            if isinstance(value, _Section):
                value = value.apply(current)
            elif isinstance(value, tuple) and value and isinstance(value[0], _Section):
                value = tuple(v.apply(None) for v in value)
            changes[name] = value
        return dataclasses.replace(base, **changes)


class BudgetConfig(_Section):
    """A disruption budget (see ``DisruptionBudget``)."""

    _target = DisruptionBudget
    nodes: str = mirrored(
        DisruptionBudget, "nodes", description="Nodes disrupted at once: a count or a percentage; '0' freezes."
    )
    schedule: str | None = mirrored(
        DisruptionBudget, "schedule", description="UTC cron when the budget applies; needs duration."
    )
    duration: str | None = mirrored(
        DisruptionBudget, "duration", description="How long the budget applies after each schedule tick."
    )
    reasons: tuple[BudgetReason, ...] = mirrored(
        DisruptionBudget, "reasons", description="Disruption reasons limited (default all)."
    )


class DisruptionConfig(_Section):
    """When Karpenter may remove nodes (see ``Disruption``); unset keys keep the preset's."""

    _target = Disruption
    consolidation_policy: ConsolidationPolicy = mirrored(Disruption, "consolidation_policy")
    consolidate_after: str = mirrored(Disruption, "consolidate_after")
    expire_after: str = mirrored(Disruption, "expire_after")
    termination_grace_period: str | None = mirrored(Disruption, "termination_grace_period")
    budgets: tuple[BudgetConfig, ...] = ()


class GpuRequirementsConfig(_Section):
    _target = GpuRequirements
    name: str | None = mirrored(GpuRequirements, "name")
    min_count: int | None = mirrored(GpuRequirements, "min_count", ge=1)
    max_count: int | None = mirrored(GpuRequirements, "max_count", ge=1)
    min_memory_gib: float | None = mirrored(GpuRequirements, "min_memory_gib", gt=0)


class RootVolumeConfig(_Section):
    _target = RootVolume
    size_gib: int = mirrored(RootVolume, "size_gib")
    iops: int = mirrored(RootVolume, "iops")
    throughput_mibps: int = mirrored(RootVolume, "throughput_mibps")
    kms_key_id: str | None = mirrored(RootVolume, "kms_key_id")


class PlacementGroupConfig(_Section):
    _target = PlacementGroupSpec
    strategy: PlacementStrategy = mirrored(PlacementGroupSpec, "strategy")
    partitions: int | None = mirrored(PlacementGroupSpec, "partitions")


class DevicePluginConfig(_Section):
    _target = GpuSharing
    time_slicing_replicas: int = mirrored(GpuSharing, "time_slicing_replicas")
    mig_strategy: MigStrategy = mirrored(GpuSharing, "mig_strategy")


class LimitsConfig(_Section):
    _target = PoolLimits
    gpus: int | None = mirrored(PoolLimits, "gpus")
    cpu: int | None = mirrored(PoolLimits, "cpu")


_PRESETS: dict[str, Callable[..., GpuNodePoolProps]] = {
    "inference": GpuNodePoolProps.inference,
    "training": GpuNodePoolProps.training,
}


class GpuPoolConfig(StrictModel):
    """One GPU pool. ``preset`` supplies the defaults; every key given here overrides it."""

    _target: ClassVar[type[Any]] = GpuNodePoolProps
    name: str = mirrored(
        GpuNodePoolProps, "name", description="Pool name: NodePool / EC2NodeClass name and pool label value."
    )
    preset: Literal["inference", "training", "custom"] = Field(
        default="custom",
        description="inference (G5/G6/G6e, spot + on-demand), training (P5, EFA, placement group) or custom.",
    )
    families: tuple[str, ...] | None = mirrored(GpuNodePoolProps, "families")
    instance_types: tuple[str, ...] = mirrored(GpuNodePoolProps, "instance_types")
    gpu: GpuRequirementsConfig | None = None
    capacity_types: tuple[CapacityType, ...] = mirrored(GpuNodePoolProps, "capacity_types")
    capacity_reservation_ids: tuple[str, ...] = mirrored(GpuNodePoolProps, "capacity_reservation_ids")
    capacity_reservation_tags: dict[str, str] = mirrored(GpuNodePoolProps, "capacity_reservation_tags")
    ami_family: AmiFamily = mirrored(GpuNodePoolProps, "ami_family")
    ami_version: str = mirrored(GpuNodePoolProps, "ami_version")
    root_volume: RootVolumeConfig | None = None
    labels: dict[str, str] = mirrored(GpuNodePoolProps, "labels")
    limits: LimitsConfig | None = None
    disruption: DisruptionConfig | None = None
    weight: int | None = mirrored(GpuNodePoolProps, "weight")
    efa: bool = mirrored(GpuNodePoolProps, "efa")
    placement_group: PlacementGroupConfig | None = None
    availability_zone: str | None = mirrored(GpuNodePoolProps, "availability_zone")
    security_group_ids: tuple[str, ...] = mirrored(GpuNodePoolProps, "security_group_ids")
    security_group_tags: dict[str, str] = mirrored(GpuNodePoolProps, "security_group_tags")
    device_plugin: DevicePluginConfig | None = None
    _built: GpuNodePoolProps | None = PrivateAttr(default=None)

    @property
    def props(self) -> GpuNodePoolProps:
        """The construct props, as built when this pool was validated."""
        if self._built is None:
            self._built = self.to_props()
        return self._built

    @field_validator("families")
    @classmethod
    def _families(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is not None and not v:
            raise fail(
                "families is empty: the pool could launch nothing",
                "name at least one family, e.g. [g6, g6e], or leave the key out",
            )
        return v

    def to_props(self) -> GpuNodePoolProps:
        """The construct props this pool describes (raises ``ConfigError`` on bad values)."""
        preset = _PRESETS.get(self.preset)
        base = preset(name=self.name) if preset is not None else None
        changes: dict[str, Any] = {}
        for name in self.model_fields_set - {"preset"}:
            value = getattr(self, name)
            if isinstance(value, _Section):
                value = value.apply(getattr(base, name) if base is not None else None)
            changes[name] = value
        if base is not None:
            return dataclasses.replace(base, **changes)
        return GpuNodePoolProps(**changes)

    @model_validator(mode="after")
    def _props(self) -> GpuPoolConfig:
        try:
            # Built once here and kept: the plan reads these props instead of building them again.
            self._built = self.to_props()
        except ConfigError as err:
            # Every problem of the pool, as objects, under the pool's own path.
            raise ProblemsError(err.problems) from None
        return self


class ComputeConfig(StrictModel):
    """GPU capacity managed by Karpenter. Empty: no Karpenter, no GPU pools."""

    pools: tuple[GpuPoolConfig, ...] = Field(default=(), description="GPU node pools; names must be unique.")

    @model_validator(mode="after")
    def _unique(self) -> ComputeConfig:
        seen: set[str] = set()
        dupes = [p.name for p in self.pools if p.name in seen or seen.add(p.name)]  # type: ignore[func-returns-value]
        if dupes:
            raise fail(
                f"pool names {sorted(set(dupes))} are used more than once (each names a NodePool and an EC2NodeClass)",
                "give every pool a different name",
            )
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.pools)

    def pool_props(self) -> tuple[GpuNodePoolProps, ...]:
        """Each pool's props, built (and checked) once, when the profile was validated."""
        return tuple(p.props for p in self.pools)
