"""The profile's pool models (config/compute.py) hold no second copy of a GpuNodePoolProps default."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, Field

from eks_llm_stack.config import compute
from eks_llm_stack.config.compute import GpuPoolConfig, _Section, mirrored
from eks_llm_stack.config.gpu_pool import GpuNodePoolProps, RootVolume

#: Keys of the YAML model that the props dataclass does not have, on purpose.
MIRROR_ONLY = {(GpuPoolConfig, "preset")}


def _mirrors() -> list[type[BaseModel]]:
    found = [GpuPoolConfig]
    found += [
        c for c in vars(compute).values() if isinstance(c, type) and issubclass(c, _Section) and c is not _Section
    ]
    return found


def _is_section(annotation: Any) -> bool:
    if isinstance(annotation, type):
        return issubclass(annotation, _Section)
    return any(_is_section(a) for a in typing.get_args(annotation))


def _default(field: Any) -> Any:
    return field.default_factory() if field.default_factory is not None else field.default


def mismatches(model: type[BaseModel]) -> list[str]:
    """Every field of ``model`` whose default differs from the dataclass field it mirrors."""
    target = model._target  # type: ignore[attr-defined]
    fields = {f.name: f for f in dataclasses.fields(target)}
    out = []
    for name, info in model.model_fields.items():
        if (model, name) in MIRROR_ONLY:
            continue
        if name not in fields:
            out.append(f"{model.__name__}.{name}: no field of {target.__name__}")
            continue
        if _is_section(info.annotation):
            # A nested section's default means "keep the preset's": nothing to mirror.
            if _default(info) not in (None, ()):
                out.append(f"{model.__name__}.{name}: a nested section must default to None or ()")
            continue
        spec = fields[name]
        if spec.default_factory is not dataclasses.MISSING:
            expected: Any = spec.default_factory()
        elif spec.default is dataclasses.MISSING:
            if not info.is_required():
                out.append(f"{model.__name__}.{name}: required on {target.__name__} but optional in YAML")
            continue
        else:
            expected = spec.default
        if info.is_required() or _default(info) != expected:
            out.append(f"{model.__name__}.{name}: {_default(info)!r} != {target.__name__}.{name} {expected!r}")
    return out


@pytest.mark.parametrize("model", _mirrors(), ids=lambda m: m.__name__)
def test_mirror_defaults_are_the_dataclass_defaults(model: type[BaseModel]) -> None:
    assert mismatches(model) == []


def test_every_nested_props_type_has_a_mirror() -> None:
    targets = {m._target for m in _mirrors()}  # type: ignore[attr-defined]
    assert {"DisruptionBudget", "Disruption", "GpuRequirements", "RootVolume", "PlacementGroupSpec"} <= {
        t.__name__ for t in targets
    }
    assert GpuNodePoolProps in targets


def test_a_drifted_default_is_caught() -> None:
    class Drifted(_Section):
        _target = RootVolume
        size_gib: int = 100  # RootVolume says 200
        iops: int = mirrored(RootVolume, "iops")
        throughput_mibps: int = Field(default=125)
        kms_key_id: str | None = None
        extra: int = 1

    assert mismatches(Drifted) == [
        "Drifted.size_gib: 100 != RootVolume.size_gib 200",
        "Drifted.extra: no field of RootVolume",
    ]


def test_a_required_props_field_stays_required() -> None:
    class Loose(BaseModel):
        _target: ClassVar[type[Any]] = GpuNodePoolProps
        name: str = "x"

    assert mismatches(Loose) == ["Loose.name: required on GpuNodePoolProps but optional in YAML"]


def test_old_import_path_still_gives_the_props() -> None:
    from eks_llm_stack.config import gpu_pool

    for name in ("GpuNodePoolProps", "DisruptionBudget", "GpuSharing", "PlacementGroupSpec", "problems_of"):
        assert getattr(compute, name) is getattr(gpu_pool, name)
