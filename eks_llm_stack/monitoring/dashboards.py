"""Grafana dashboards as code: GPU fleet, vLLM serving and GPU cost.

Each dashboard is a plain dict in Grafana's JSON model (schema 39), built from small panel
helpers, so a query lives next to its title and unit. :func:`all_dashboards` returns them
by file name; :func:`write_dashboards` writes them to a directory (``dist/dashboards/``) for
import into any Grafana, and the monitoring chart ships the same JSON in ConfigMaps for the
Grafana sidecar. :func:`unknown_metrics` lists every query that names a metric neither DCGM
nor vLLM exports (see :mod:`eks_llm_stack.monitoring.metrics`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import metrics as m

SCHEMA_VERSION = 39
_DS = {"type": "prometheus", "uid": "${datasource}"}
_WIDTH = 24


class _Layout:
    """Places panels left to right, 12 columns wide, wrapping into rows."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self._x = 0
        self._y = 0
        self._row_h = 0

    def row(self, title: str) -> None:
        if self._x:
            self._y += self._row_h
            self._x = 0
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "id": len(self.panels) + 1,
                "collapsed": False,
                "gridPos": {"h": 1, "w": _WIDTH, "x": 0, "y": self._y},
                "panels": [],
            }
        )
        self._y += 1
        self._row_h = 0

    def add(self, panel: dict[str, Any], *, w: int = 12, h: int = 8) -> None:
        if self._x + w > _WIDTH:
            self._y += self._row_h
            self._x = 0
            self._row_h = 0
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"h": h, "w": w, "x": self._x, "y": self._y}
        self.panels.append(panel)
        self._x += w
        self._row_h = max(self._row_h, h)


def _targets(queries: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
    return [
        {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend, "datasource": _DS}
        for i, (expr, legend) in enumerate(queries)
    ]


def timeseries(
    title: str, *queries: tuple[str, str], unit: str = "short", description: str = "", max_: float | None = None
) -> dict[str, Any]:
    """A time-series panel; each query is ``(expr, legend)``."""
    defaults: dict[str, Any] = {"unit": unit, "custom": {"lineWidth": 1, "fillOpacity": 10}}
    if max_ is not None:
        defaults["max"] = max_
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": _DS,
        "targets": _targets(queries),
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
    }


def stat(title: str, expr: str, *, unit: str = "short", description: str = "", legend: str = "") -> dict[str, Any]:
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": _DS,
        "targets": _targets(((expr, legend),)),
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "graphMode": "area"},
    }


def table(title: str, expr: str, *, unit: str = "short", description: str = "") -> dict[str, Any]:
    target = _targets(((expr, ""),))[0] | {"instant": True, "format": "table"}
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": _DS,
        "targets": [target],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"showHeader": True},
    }


def _query_var(name: str, label: str, query: str, *, multi: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": _DS,
        "query": {"query": query, "refId": f"{name}-var"},
        "definition": query,
        "refresh": 2,
        "multi": multi,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": "All", "value": "$__all"},
        "sort": 1,
    }


def _datasource_var() -> dict[str, Any]:
    return {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus", "current": {}}


def _dashboard(
    uid: str, title: str, description: str, layout: _Layout, variables: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["eks-llm-stack"],
        "timezone": "browser",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [_datasource_var(), *variables]},
        "annotations": {"list": []},
        "panels": layout.panels,
    }


# --- GPU fleet ---------------------------------------------------------------------------------

_GPU_SEL = f'{m.POOL_LABEL}=~"$pool", {m.NODE_LABEL}=~"$node"'
_GPU_LEGEND = "{{node}} GPU {{gpu}}"


def gpu_fleet_dashboard() -> dict[str, Any]:
    """Per-GPU utilisation, memory, temperature, power, clocks, XID errors and profiling activity."""
    s = _GPU_SEL
    lay = _Layout()
    lay.row("Fleet")
    lay.add(stat("GPUs reporting", f"count(DCGM_FI_DEV_GPU_TEMP{{{s}}})"), w=6, h=4)
    lay.add(stat("Mean utilisation", f"avg(DCGM_FI_DEV_GPU_UTIL{{{s}}})", unit="percent"), w=6, h=4)
    lay.add(
        stat(
            "Memory used",
            f"sum(DCGM_FI_DEV_FB_USED{{{s}}}) / (sum(DCGM_FI_DEV_FB_USED{{{s}}}) + sum(DCGM_FI_DEV_FB_FREE{{{s}}}))",
            unit="percentunit",
        ),
        w=6,
        h=4,
    )
    lay.add(stat("Power draw", f"sum(DCGM_FI_DEV_POWER_USAGE{{{s}}})", unit="watt"), w=6, h=4)
    lay.row("Per GPU")
    lay.add(
        timeseries("Utilisation", (f"DCGM_FI_DEV_GPU_UTIL{{{s}}}", _GPU_LEGEND), unit="percent", max_=100),
    )
    lay.add(
        timeseries(
            "Framebuffer memory used",
            (
                f"DCGM_FI_DEV_FB_USED{{{s}}} / (DCGM_FI_DEV_FB_USED{{{s}}} + DCGM_FI_DEV_FB_FREE{{{s}}})",
                _GPU_LEGEND,
            ),
            unit="percentunit",
            max_=1,
            description="FB_USED / (FB_USED + FB_FREE). vLLM reserves --gpu-memory-utilization (0.9) at start.",
        )
    )
    lay.add(
        timeseries(
            "Temperature",
            (f"DCGM_FI_DEV_GPU_TEMP{{{s}}}", _GPU_LEGEND),
            (f"DCGM_FI_DEV_MEMORY_TEMP{{{s}}}", "{{node}} GPU {{gpu}} memory"),
            unit="celsius",
        )
    )
    lay.add(
        timeseries(
            "Power draw and limit",
            (f"DCGM_FI_DEV_POWER_USAGE{{{s}}}", _GPU_LEGEND),
            (f"DCGM_FI_DEV_POWER_MGMT_LIMIT{{{s}}}", "{{node}} GPU {{gpu}} limit"),
            unit="watt",
        )
    )
    lay.add(
        timeseries(
            "SM clock (share of maximum)",
            (f"DCGM_FI_DEV_SM_CLOCK{{{s}}} / DCGM_FI_DEV_MAX_SM_CLOCK{{{s}}}", _GPU_LEGEND),
            unit="percentunit",
            max_=1,
            description="Below the baseline while busy means thermal or power throttling.",
        )
    )
    lay.add(
        timeseries(
            "Throttling time",
            (f"rate(DCGM_FI_DEV_THERMAL_VIOLATION{{{s}}}[5m]) / 1e9", "{{node}} GPU {{gpu}} thermal"),
            (f"rate(DCGM_FI_DEV_POWER_VIOLATION{{{s}}}[5m]) / 1e9", "{{node}} GPU {{gpu}} power"),
            unit="percentunit",
            description="Share of wall time the clocks were held down, by cause (DCGM 4.x counts nanoseconds; "
            "DCGM 3.x counted microseconds, which reads 1000x too low here).",
        )
    )
    lay.add(
        timeseries(
            "XID errors (last code)",
            (f"DCGM_FI_DEV_XID_ERRORS{{{s}}} > 0", _GPU_LEGEND),
            description="The value is the XID code; see the GpuXidError runbook.",
        )
    )
    lay.add(
        timeseries(
            "ECC and PCIe errors",
            (f"increase(DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{{{s}}}[1h])", "{{node}} GPU {{gpu}} double-bit ECC"),
            (f"increase(DCGM_FI_DEV_PCIE_REPLAY_COUNTER{{{s}}}[1h])", "{{node}} GPU {{gpu}} PCIe replays"),
        )
    )
    lay.row("Profiling (what the SMs are doing)")
    lay.add(
        timeseries(
            "Tensor core and DRAM activity",
            (f"DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{{{s}}}", "{{node}} GPU {{gpu}} tensor"),
            (f"DCGM_FI_PROF_DRAM_ACTIVE{{{s}}}", "{{node}} GPU {{gpu}} DRAM"),
            unit="percentunit",
            max_=1,
            description="Decode is memory-bound (high DRAM, low tensor); prefill is compute-bound.",
        )
    )
    lay.add(
        timeseries(
            "SM activity and occupancy",
            (f"DCGM_FI_PROF_SM_ACTIVE{{{s}}}", "{{node}} GPU {{gpu}} active"),
            (f"DCGM_FI_PROF_SM_OCCUPANCY{{{s}}}", "{{node}} GPU {{gpu}} occupancy"),
            unit="percentunit",
            max_=1,
        )
    )
    lay.add(
        timeseries(
            "PCIe and NVLink traffic",
            (f"DCGM_FI_PROF_PCIE_TX_BYTES{{{s}}} + DCGM_FI_PROF_PCIE_RX_BYTES{{{s}}}", "{{node}} GPU {{gpu}} PCIe"),
            (
                f"DCGM_FI_PROF_NVLINK_TX_BYTES{{{s}}} + DCGM_FI_PROF_NVLINK_RX_BYTES{{{s}}}",
                "{{node}} GPU {{gpu}} NVLink",
            ),
            unit="Bps",
        )
    )
    lay.add(
        table(
            "GPUs by pod",
            f"max by ({m.NODE_LABEL}, gpu, modelName, namespace, pod) (DCGM_FI_DEV_GPU_UTIL{{{s}}})",
            unit="percent",
            description="Pod-to-GPU attribution from the kubelet pod-resources socket.",
        ),
        w=24,
    )
    variables = [
        _query_var("pool", "Pool", f"label_values(DCGM_FI_DEV_GPU_TEMP, {m.POOL_LABEL})"),
        _query_var("node", "Node", f'label_values(DCGM_FI_DEV_GPU_TEMP{{{m.POOL_LABEL}=~"$pool"}}, {m.NODE_LABEL})'),
    ]
    return _dashboard(
        "eks-llm-gpu-fleet", "GPU fleet", "Every GPU the DCGM exporter sees, per node and pool.", lay, variables
    )


# --- vLLM serving ------------------------------------------------------------------------------

_V_SEL = 'namespace=~"$namespace", model_name=~"$model"'
_BY = "namespace, model_name"


def _quantiles(metric: str, what: str) -> tuple[tuple[str, str], ...]:
    """p50/p95/p99 of a histogram of the pinned vLLM release."""
    out = []
    for q in ("0.5", "0.95", "0.99"):
        rates = f"sum by ({_BY}, le) (rate({metric}_bucket{{{_V_SEL}}}[5m]))"
        out.append((f"histogram_quantile({q}, {rates})", f"{{{{model_name}}}} p{round(float(q) * 100)} {what}"))
    return tuple(out)


def vllm_dashboard() -> dict[str, Any]:
    """Request rate, TTFT/ITL percentiles, tokens/s, KV cache, queue depth and preemptions per model."""
    s = _V_SEL
    lay = _Layout()
    lay.row("Traffic")
    lay.add(
        timeseries(
            "Requests per second",
            (
                f"sum by ({_BY}, finished_reason) (rate(vllm:request_success_total{{{s}}}[5m]))",
                "{{model_name}} {{finished_reason}}",
            ),
            unit="reqps",
        )
    )
    lay.add(
        timeseries(
            "Tokens per second",
            (f"sum by ({_BY}) (rate(vllm:generation_tokens_total{{{s}}}[5m]))", "{{model_name}} generated"),
            (f"sum by ({_BY}) (rate(vllm:prompt_tokens_total{{{s}}}[5m]))", "{{model_name}} prompt"),
            unit="short",
        )
    )
    lay.row("Latency (SLOs: TTFT p95 < 500 ms, ITL p95 < 50 ms)")
    lay.add(
        timeseries(
            "Time to first token",
            *_quantiles("vllm:time_to_first_token_seconds", "TTFT"),
            unit="s",
        )
    )
    lay.add(
        timeseries(
            "Inter-token latency",
            *_quantiles("vllm:inter_token_latency_seconds", "ITL"),
            unit="s",
            description="vllm:inter_token_latency_seconds.",
        )
    )
    lay.add(timeseries("End-to-end latency", *_quantiles("vllm:e2e_request_latency_seconds", "E2E"), unit="s"))
    lay.add(timeseries("Queue time", *_quantiles("vllm:request_queue_time_seconds", "queue"), unit="s"))
    lay.row("Capacity")
    lay.add(
        timeseries(
            "Queue depth and running requests",
            (f"sum by ({_BY}) (vllm:num_requests_waiting{{{s}}})", "{{model_name}} waiting"),
            (f"sum by ({_BY}) (vllm:num_requests_running{{{s}}})", "{{model_name}} running"),
        )
    )
    lay.add(
        timeseries(
            "KV cache usage",
            (
                f"max by ({_BY}, pod) (vllm:kv_cache_usage_perc{{{s}}})",
                "{{model_name}} {{pod}}",
            ),
            unit="percentunit",
            max_=1,
            description="Near 100 % new requests wait and running ones are preempted; see the VllmKvCacheFull runbook.",
        )
    )
    lay.add(
        timeseries(
            "Preemptions per second",
            (f"sum by ({_BY}) (rate(vllm:num_preemptions_total{{{s}}}[5m]))", "{{model_name}}"),
        )
    )
    lay.add(
        timeseries(
            "Prefix cache hit rate",
            (
                f"sum by ({_BY}) (rate(vllm:prefix_cache_hits_total{{{s}}}[5m])) / "
                f"sum by ({_BY}) (rate(vllm:prefix_cache_queries_total{{{s}}}[5m]))",
                "{{model_name}}",
            ),
            unit="percentunit",
            max_=1,
        )
    )
    variables = [
        _query_var("namespace", "Namespace", "label_values(vllm:num_requests_running, namespace)"),
        _query_var("model", "Model", 'label_values(vllm:num_requests_running{namespace=~"$namespace"}, model_name)'),
    ]
    return _dashboard(
        "eks-llm-vllm", "vLLM serving", "Request, latency and capacity metrics per model.", lay, variables
    )


# --- Cost --------------------------------------------------------------------------------------

_POOL_BY = f"{m.POOL_LABEL}, {m.CAPACITY_TYPE_LABEL}"


def cost_dashboard() -> dict[str, Any]:
    """GPU-hours by pool and capacity type (spot / on-demand), and how many of them sat idle."""
    lay = _Layout()
    gpus = f"count by ({_POOL_BY}) (DCGM_FI_DEV_GPU_TEMP)"
    idle = f"count by ({_POOL_BY}) (DCGM_FI_DEV_GPU_UTIL < 5)"
    lay.row("GPU-hours in the selected range")
    lay.add(
        table(
            "GPU-hours by pool and capacity type",
            f"sum by ({_POOL_BY}) (sum_over_time(({gpus})[$__range:1m])) / 60",
            unit="h",
            description="One GPU reporting for one hour is one GPU-hour (1-minute resolution).",
        )
    )
    lay.add(
        table(
            "Idle GPU-hours (utilisation under 5 %)",
            f"sum by ({_POOL_BY}) (sum_over_time(({idle})[$__range:1m])) / 60",
            unit="h",
            description="Paid-for but unused: candidates for consolidation or smaller pools.",
        )
    )
    lay.row("Now")
    lay.add(timeseries("GPUs by pool and capacity type", (gpus, "{{pool}} {{capacity_type}}")))
    lay.add(
        timeseries(
            "GPUs by instance type",
            (
                f"count by ({m.INSTANCE_TYPE_LABEL}, {m.CAPACITY_TYPE_LABEL}) (DCGM_FI_DEV_GPU_TEMP)",
                "{{instance_type}} {{capacity_type}}",
            ),
        )
    )
    lay.add(
        timeseries(
            "Mean utilisation by pool",
            (f"avg by ({m.POOL_LABEL}) (DCGM_FI_DEV_GPU_UTIL)", "{{pool}}"),
            unit="percent",
            max_=100,
        )
    )
    lay.add(
        timeseries(
            "Energy by pool",
            (f"sum by ({m.POOL_LABEL}) (rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[5m])) / 1000", "{{pool}}"),
            unit="watt",
            description="Energy counter (mJ) as average power.",
        )
    )
    return _dashboard(
        "eks-llm-gpu-cost", "GPU cost", "GPU-hours by pool and capacity type, and the idle share.", lay, []
    )


# --- All of them -------------------------------------------------------------------------------


def all_dashboards() -> dict[str, dict[str, Any]]:
    """``file name -> dashboard JSON model`` for every dashboard."""
    return {
        "gpu-fleet.json": gpu_fleet_dashboard(),
        "vllm-serving.json": vllm_dashboard(),
        "gpu-cost.json": cost_dashboard(),
    }


def dashboard_json(dashboard: dict[str, Any]) -> str:
    return json.dumps(dashboard, indent=2, sort_keys=True) + "\n"


def write_dashboards(out_dir: Path) -> list[Path]:
    """Write every dashboard as ``<name>.json`` into ``out_dir`` (created); return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, dash in all_dashboards().items():
        path = out_dir / name
        path.write_text(dashboard_json(dash))
        written.append(path)
    return written


def dashboard_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(where, PromQL)`` for every panel target and every query variable of ``dashboard``."""

    def walk(panels: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
        for p in panels:
            for t in p.get("targets", []):
                yield f"panel '{p.get('title')}' ({t.get('refId')})", t["expr"]
            yield from walk(p.get("panels", []))

    yield from walk(dashboard.get("panels", []))
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            q = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            yield f"variable '{var['name']}'", q


def unknown_metrics(dashboard: dict[str, Any]) -> list[str]:
    """Queries of ``dashboard`` that name a metric neither DCGM nor vLLM exports (empty: all known)."""
    known = m.known_series()
    problems = []
    for where, expr in dashboard_queries(dashboard):
        for name in sorted(m.promql_metric_names(expr) - known):
            problems.append(f"{dashboard.get('title')}: {where}: '{name}' is exported by neither DCGM nor vLLM")
    return problems
