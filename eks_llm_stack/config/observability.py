"""Profile section ``observability``: Prometheus, Grafana, DCGM exporter, alerts."""

from __future__ import annotations

from .base import StrictModel


class ObservabilityConfig(StrictModel):
    """Monitoring of GPUs and models. Empty: none."""
