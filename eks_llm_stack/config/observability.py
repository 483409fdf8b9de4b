"""Profile section ``observability``: Prometheus, Grafana, DCGM exporter, alerts."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from .base import StrictModel, check_namespace, fail

#: A Prometheus duration as the operator's CRDs accept it for retention and intervals.
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w|y)$")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration_seconds(value: str) -> float:
    """``'30s'`` -> 30.0; ``ValueError`` if ``value`` is not a single-unit Prometheus duration."""
    m = _DURATION.match(value)
    if not m:
        raise ValueError(value)
    return int(m.group(1)) * _SECONDS[m.group(2)]


def check_duration(value: str, what: str) -> str:
    if not _DURATION.match(value) or duration_seconds(value) == 0:
        raise fail(f"'{value}' is not a {what}", "write a whole number and one unit: 30s, 5m, 15d, 2w")
    return value


class AlertThresholds(StrictModel):
    """Where the GPU and vLLM alerts fire. Defaults follow REFERENCE.md (GPU alerts, vLLM SLOs)."""

    gpu_temperature_warning_celsius: float = Field(
        default=80, gt=0, le=120, description="Warning above this GPU temperature."
    )
    gpu_temperature_critical_celsius: float = Field(
        default=90, gt=0, le=120, description="Critical above this GPU temperature."
    )
    gpu_utilization_percent: float = Field(
        default=95, gt=0, le=100, description="Saturation: utilisation above this for 30 minutes."
    )
    framebuffer_used_ratio: float = Field(
        default=0.95, gt=0, le=1, description="Memory pressure: FB_USED / (FB_USED + FB_FREE) above this."
    )
    sm_clock_ratio: float = Field(
        default=0.7, gt=0, lt=1, description="Throttling: SM clock below this fraction of the GPU's maximum while busy."
    )
    busy_utilization_percent: float = Field(
        default=80, gt=0, le=100, description="A GPU counts as busy (for the throttling alert) above this utilisation."
    )
    power_limit_ratio: float = Field(
        default=0.95, gt=0, le=1, description="Power draw above this fraction of the limit."
    )
    kv_cache_usage_ratio: float = Field(default=0.9, gt=0, le=1, description="vLLM KV-cache usage above this.")
    requests_waiting: int = Field(default=10, ge=1, description="vLLM requests waiting per model above this.")
    ttft_p95_seconds: float = Field(default=0.5, gt=0, description="p95 time to first token above this (SLO 500 ms).")
    itl_p95_seconds: float = Field(default=0.05, gt=0, description="p95 inter-token latency above this (SLO 50 ms).")

    @model_validator(mode="after")
    def _ordered(self) -> AlertThresholds:
        if self.gpu_temperature_warning_celsius >= self.gpu_temperature_critical_celsius:
            raise fail(
                f"the warning temperature ({self.gpu_temperature_warning_celsius}) must be below the critical one "
                f"({self.gpu_temperature_critical_celsius})",
                "lower alerts.gpu_temperature_warning_celsius or raise alerts.gpu_temperature_critical_celsius",
            )
        return self


class ObservabilityConfig(StrictModel):
    """Monitoring of GPUs and models: kube-prometheus-stack, the DCGM exporter, alerts and dashboards.

    With ``managed: true`` metrics are also remote-written to an Amazon Managed Service for
    Prometheus workspace and an Amazon Managed Grafana workspace replaces the in-cluster Grafana.
    """

    enabled: bool = Field(default=True, description="Install the monitoring stack (default on).")
    namespace: str = Field(default="monitoring", description="Namespace of Prometheus, Grafana and the DCGM exporter.")
    retention: str = Field(default="15d", description="How long Prometheus keeps samples.")
    storage_gib: int = Field(default=50, ge=10, le=16384, description="Size of Prometheus' gp3 volume.")
    scrape_interval: str = Field(
        default="30s", description="Default scrape interval (the DCGM exporter is scraped at 15s)."
    )
    grafana_admin_secret: str | None = Field(
        default=None,
        description="An existing Secrets Manager secret (name or ARN) holding the Grafana admin login as JSON "
        '{"username": ..., "password": ...}; default: the Data stack creates <prefix>/grafana-admin with a '
        "generated password. Synced by External Secrets either way.",
    )
    managed: bool = Field(
        default=False,
        description="Use Amazon Managed Service for Prometheus (remote-write) and Amazon Managed Grafana "
        "(default off).",
    )
    container_insights: bool = Field(
        default=False, description="Install the amazon-cloudwatch-observability add-on (default off)."
    )
    dcgm_profiling_metrics: bool = Field(
        default=True, description="Export the DCGM_FI_PROF_* metrics (default on; needs datacenter GPUs)."
    )
    alerts: AlertThresholds = Field(default_factory=AlertThresholds)

    @field_validator("retention")
    @classmethod
    def _retention(cls, v: str) -> str:
        check_duration(v, "retention duration")
        if duration_seconds(v) < 3600:
            raise fail(f"retention '{v}' is shorter than an hour", "keep at least 1h of samples, e.g. 15d")
        return v

    @field_validator("scrape_interval")
    @classmethod
    def _interval(cls, v: str) -> str:
        check_duration(v, "scrape interval")
        if not 5 <= duration_seconds(v) <= 300:
            raise fail(f"scrape interval '{v}' is outside 5s..5m", "use a value such as 15s, 30s or 1m")
        return v

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str) -> str:
        return check_namespace(v)

    @field_validator("grafana_admin_secret")
    @classmethod
    def _secret(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if v.startswith("arn:"):
            if not re.fullmatch(r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+", v):
                raise fail(
                    f"'{v}' is not a Secrets Manager secret ARN",
                    "use arn:aws:secretsmanager:<region>:<account>:secret:<name>",
                )
        elif not re.fullmatch(r"[\w/+=.@-]{1,512}", v):
            raise fail(f"'{v}' is not a Secrets Manager secret name", "use letters, digits and /_+=.@-")
        return v
