"""Profile section ``models``: the vLLM endpoints of the Serving stack."""

from __future__ import annotations

from .base import StrictModel


class ModelConfig(StrictModel):
    """One served model."""

    name: str
