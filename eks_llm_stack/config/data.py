"""Profile sections ``storage`` and ``secrets``: stateful resources of the Data stack."""

from __future__ import annotations

from .base import StrictModel


class StorageConfig(StrictModel):
    """Model storage (FSx for Lustre, EFS). Empty: none."""


class SecretsConfig(StrictModel):
    """Secrets Manager entries synced into the cluster. Empty: none."""
