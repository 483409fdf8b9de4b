"""Profile section ``compute``: Karpenter GPU node pools."""

from __future__ import annotations

from .base import StrictModel


class ComputeConfig(StrictModel):
    """GPU capacity managed by Karpenter. Empty: no Karpenter, no GPU pools."""
