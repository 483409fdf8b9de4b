"""Data the sizing engine and the GPU node pools build on: GPUs, EC2 instance types, open models.

``from eks_llm_stack.catalog import INSTANCES, get_instance, GPUS, MODELS, get_model``
"""

from __future__ import annotations

import difflib
from pathlib import Path

from ..errors import ConfigError, Problem
from .gpus import GPUS, Gpu
from .hf_config import load_config_json
from .instances import FAMILIES, INSTANCES, InstanceType
from .models import MODELS, NATIVE_DTYPES, ModelSpec, get_model

__all__ = [
    "FAMILIES",
    "GPUS",
    "INSTANCES",
    "MODELS",
    "NATIVE_DTYPES",
    "Gpu",
    "InstanceType",
    "ModelSpec",
    "get_instance",
    "get_model",
    "load_config_json",
    "resolve_model",
]


def get_instance(name: str) -> InstanceType:
    """The catalog entry of an instance type (``"g5.12xlarge"``); ``ConfigError`` with suggestions if unknown."""
    found = INSTANCES.get(str(name).strip().lower())
    if found is not None:
        return found
    close = difflib.get_close_matches(str(name).lower(), list(INSTANCES), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    raise ConfigError(
        "instance type",
        [
            Problem(
                "instance_type",
                "is not in the GPU instance catalog",
                f"{hint}Use one of the {', '.join(FAMILIES)} sizes (e.g. g5.12xlarge, p5.48xlarge)",
                name,
            )
        ],
    )


def resolve_model(model: str | ModelSpec) -> ModelSpec:
    """A :class:`ModelSpec` from a spec, a catalog name / HF id, or a path to a ``config.json``.

    Here rather than in ``models``: it needs both the table and the ``config.json`` parser, which
    builds on ``models`` (one direction only).
    """
    if isinstance(model, ModelSpec):
        return model
    path = Path(str(model)).expanduser()
    if str(model).endswith(".json") or path.is_file():
        return load_config_json(path)
    return get_model(str(model))
