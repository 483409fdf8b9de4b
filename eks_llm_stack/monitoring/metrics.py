"""Every metric name the platform's alerts and dashboards may query, in one place.

Two sources feed Prometheus with GPU-serving data:

* the **DCGM exporter**, which exports exactly the DCGM fields listed in :data:`DCGM_FIELDS`
  (rendered into its counters ConfigMap by :func:`dcgm_counters_csv`), and
* **vLLM**, whose ``/metrics`` endpoint names are in :data:`VLLM_METRICS` — names of the pinned
  release only (``eks_llm_stack.gates.metrics_contract`` checks them against its metrics.json):
  a query that falls back to an older release's name would only hide a missing series.

Alerts and dashboards are checked against :func:`known_series`: a panel or rule that names
a metric neither source exports is a defect caught by the test suite, not an empty graph
found in production.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

MetricType = Literal["gauge", "counter", "histogram"]


@dataclass(frozen=True, kw_only=True)
class DcgmField:
    """One DCGM field exported as a Prometheus metric of the same name.

    ``profiling`` marks the ``DCGM_FI_PROF_*`` fields: they need the exporter to run with
    ``CAP_SYS_ADMIN`` and a datacenter GPU (A10G, L4, A100, H100 …).
    """

    name: str
    type: Literal["gauge", "counter"]
    help: str
    profiling: bool = False

    def __post_init__(self) -> None:
        # dcgm-exporter reads the counters file with Go's encoding/csv and needs exactly 3 fields.
        if "," in self.help or '"' in self.help:
            raise ValueError(f"DcgmField {self.name}: help text {self.help!r} contains a comma or a quote")


#: The DCGM fields our exporter ConfigMap enables: the REFERENCE alert counters, clocks,
#: power, PCIe/NVLink and the profiling metrics that explain LLM serving performance
#: (tensor-core and DRAM activity: decode is memory-bound, prefill compute-bound).
DCGM_FIELDS: tuple[DcgmField, ...] = (
    # Clocks: the SM clock against its maximum reveals throttling.
    DcgmField(name="DCGM_FI_DEV_SM_CLOCK", type="gauge", help="SM clock frequency (in MHz)."),
    DcgmField(name="DCGM_FI_DEV_MAX_SM_CLOCK", type="gauge", help="Maximum SM clock frequency (in MHz)."),
    DcgmField(name="DCGM_FI_DEV_MEM_CLOCK", type="gauge", help="Memory clock frequency (in MHz)."),
    # Temperature
    DcgmField(name="DCGM_FI_DEV_GPU_TEMP", type="gauge", help="GPU temperature (in C)."),
    DcgmField(name="DCGM_FI_DEV_MEMORY_TEMP", type="gauge", help="Memory temperature (in C)."),
    # Power
    DcgmField(name="DCGM_FI_DEV_POWER_USAGE", type="gauge", help="Power draw (in W)."),
    DcgmField(name="DCGM_FI_DEV_POWER_MGMT_LIMIT", type="gauge", help="Power management limit (in W)."),
    DcgmField(
        name="DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
        type="counter",
        help="Total energy consumption since boot (in mJ).",
    ),
    # Utilisation
    DcgmField(name="DCGM_FI_DEV_GPU_UTIL", type="gauge", help="GPU utilization (in %)."),
    DcgmField(name="DCGM_FI_DEV_MEM_COPY_UTIL", type="gauge", help="Memory utilization (in %)."),
    # Framebuffer memory
    DcgmField(name="DCGM_FI_DEV_FB_FREE", type="gauge", help="Framebuffer memory free (in MiB)."),
    DcgmField(name="DCGM_FI_DEV_FB_USED", type="gauge", help="Framebuffer memory used (in MiB)."),
    # Errors and throttling
    DcgmField(name="DCGM_FI_DEV_XID_ERRORS", type="gauge", help="Value of the last XID error encountered."),
    DcgmField(
        name="DCGM_FI_DEV_POWER_VIOLATION",
        type="counter",
        help="Throttling duration due to power constraints (in ns).",
    ),
    DcgmField(
        name="DCGM_FI_DEV_THERMAL_VIOLATION",
        type="counter",
        help="Throttling duration due to thermal constraints (in ns).",
    ),
    DcgmField(
        name="DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
        type="counter",
        help="Total number of double-bit volatile ECC errors.",
    ),
    DcgmField(
        name="DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
        type="counter",
        help="Number of remapped rows for uncorrectable errors.",
    ),
    DcgmField(name="DCGM_FI_DEV_ROW_REMAP_FAILURE", type="gauge", help="Whether remapping of rows has failed."),
    # PCIe and NVLink
    DcgmField(name="DCGM_FI_DEV_PCIE_REPLAY_COUNTER", type="counter", help="Total number of PCIe retries."),
    DcgmField(
        name="DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
        type="counter",
        help="Total number of NVLink bandwidth counters for all lanes.",
    ),
    # Profiling (DCP) metrics
    DcgmField(
        name="DCGM_FI_PROF_GR_ENGINE_ACTIVE",
        type="gauge",
        help="Ratio of time the graphics engine is active.",
        profiling=True,
    ),
    DcgmField(
        name="DCGM_FI_PROF_SM_ACTIVE",
        type="gauge",
        help="The ratio of cycles an SM has at least 1 warp assigned.",
        profiling=True,
    ),
    DcgmField(
        name="DCGM_FI_PROF_SM_OCCUPANCY",
        type="gauge",
        help="The ratio of number of warps resident on an SM.",
        profiling=True,
    ),
    DcgmField(
        name="DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
        type="gauge",
        help="Ratio of cycles the tensor (HMMA) pipe is active.",
        profiling=True,
    ),
    DcgmField(
        name="DCGM_FI_PROF_DRAM_ACTIVE",
        type="gauge",
        help="Ratio of cycles the device memory interface is active sending or receiving data.",
        profiling=True,
    ),
    DcgmField(
        name="DCGM_FI_PROF_PCIE_TX_BYTES",
        type="gauge",
        help="The rate of data transmitted over the PCIe bus (in B/s).",
        profiling=True,
    ),
    DcgmField(
        name="DCGM_FI_PROF_PCIE_RX_BYTES",
        type="gauge",
        help="The rate of data received over the PCIe bus (in B/s).",
        profiling=True,
    ),
    DcgmField(
        name="DCGM_FI_PROF_NVLINK_TX_BYTES",
        type="gauge",
        help="The rate of data transmitted over NVLink (in B/s).",
        profiling=True,
    ),
    DcgmField(
        name="DCGM_FI_PROF_NVLINK_RX_BYTES",
        type="gauge",
        help="The rate of data received over NVLink (in B/s).",
        profiling=True,
    ),
)

#: Labels the DCGM exporter puts on every GPU series (``gpu`` index, ``UUID``, ``modelName``,
#: …); with pod attribution on, ``namespace``/``pod``/``container`` name the pod using the GPU.
DCGM_GPU_LABELS: tuple[str, ...] = ("gpu", "UUID", "device", "modelName", "Hostname", "pci_bus_id")
#: Labels our DCGM ServiceMonitor adds from the node the exporter pod runs on.
NODE_LABEL = "node"
POOL_LABEL = "pool"
CAPACITY_TYPE_LABEL = "capacity_type"
INSTANCE_TYPE_LABEL = "instance_type"
#: Label our ServiceMonitor/PodMonitor put on every target they scrape (``dcgm-exporter`` or
#: ``vllm``), so the scrape-target-down alert covers our targets and nothing else.
COMPONENT_LABEL = "eks_llm_stack_component"
DCGM_COMPONENT = "dcgm-exporter"
VLLM_COMPONENT = "vllm"


@dataclass(frozen=True, kw_only=True)
class VllmMetric:
    """A vLLM metric; ``replaced_by`` names the newer metric an older release's name became."""

    name: str
    type: MetricType
    help: str
    replaced_by: str | None = None


#: vLLM's Prometheus metrics (``model_name`` label on each). Counters are listed by their
#: exposed name, which carries the ``_total`` suffix.
VLLM_METRICS: tuple[VllmMetric, ...] = (
    VllmMetric(name="vllm:num_requests_running", type="gauge", help="Requests in the running batch."),
    VllmMetric(name="vllm:num_requests_waiting", type="gauge", help="Requests waiting to be scheduled (queue depth)."),
    VllmMetric(name="vllm:kv_cache_usage_perc", type="gauge", help="KV-cache usage, 1 = 100 %."),
    VllmMetric(name="vllm:time_to_first_token_seconds", type="histogram", help="Time to first token."),
    VllmMetric(name="vllm:inter_token_latency_seconds", type="histogram", help="Inter-token latency."),
    VllmMetric(name="vllm:e2e_request_latency_seconds", type="histogram", help="End-to-end request latency."),
    VllmMetric(name="vllm:request_queue_time_seconds", type="histogram", help="Time spent waiting in the queue."),
    VllmMetric(name="vllm:prompt_tokens_total", type="counter", help="Prefill tokens processed."),
    VllmMetric(name="vllm:generation_tokens_total", type="counter", help="Generation tokens processed."),
    VllmMetric(name="vllm:request_success_total", type="counter", help="Requests finished, by finished_reason."),
    VllmMetric(name="vllm:num_preemptions_total", type="counter", help="Preemptions of running requests."),
    VllmMetric(name="vllm:prefix_cache_queries_total", type="counter", help="Prefix-cache queries, in tokens."),
    VllmMetric(name="vllm:prefix_cache_hits_total", type="counter", help="Prefix-cache hits, in tokens."),
)

#: Series Prometheus itself writes for every target.
PROMETHEUS_SERIES: tuple[str, ...] = ("up", "scrape_duration_seconds", "scrape_samples_scraped")

_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def dcgm_series() -> frozenset[str]:
    """Metric names the DCGM exporter exports with our ConfigMap."""
    return frozenset(f.name for f in DCGM_FIELDS)


def vllm_series() -> frozenset[str]:
    """Series names vLLM exports (histograms expanded to ``_bucket``/``_sum``/``_count``)."""
    names: set[str] = set()
    for m in VLLM_METRICS:
        if m.type == "histogram":
            names.update(m.name + s for s in _HISTOGRAM_SUFFIXES)
        else:
            names.add(m.name)
    return frozenset(names)


def known_series(*, include_prometheus: bool = False) -> frozenset[str]:
    """Everything DCGM or vLLM exports; with ``include_prometheus``, also ``up`` and friends."""
    extra = frozenset(PROMETHEUS_SERIES) if include_prometheus else frozenset()
    return dcgm_series() | vllm_series() | extra


def dcgm_counters_csv(*, profiling: bool = True) -> str:
    """The exporter's counters file (``-f``): ``field, type, help`` per line.

    The exporter reads it as CSV and exits on a record without exactly three fields, so a help
    text never contains a comma or a double quote (checked when a :class:`DcgmField` is made and
    by the metric-contract gate on the rendered ConfigMap).

    Without ``profiling`` the ``DCGM_FI_PROF_*`` fields are left out (GPUs without DCP
    support, or an exporter denied ``CAP_SYS_ADMIN``).
    """
    lines = ["# DCGM FIELD, Prometheus metric type, help message (generated by eks-llm-stack)"]
    for f in DCGM_FIELDS:
        if f.profiling and not profiling:
            continue
        lines.append(f"{f.name}, {f.type}, {f.help}")
    return "\n".join(lines) + "\n"


# --- Finding metric names in PromQL -------------------------------------------------------

_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "inf",
        "nan",
        "atan2",
    }
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"(?<![A-Za-z0-9_:.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")
_NUMBER_SUFFIX = re.compile(r"(?<=\d)(ms|s|m|h|d|w|y)\b")


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (functions, keywords and labels left out).

    A light tokenizer, enough for the expressions this library writes: strings, label
    matchers, ranges and label lists are removed, then every identifier not followed by
    ``(`` is a metric name. Grafana variables (``$node``, ``${pool}``) are ignored, and
    ``label_values(metric, label)`` in a variable query yields ``metric``.
    """
    text = _GRAFANA_VAR.sub("1", expr)
    text = _STRING.sub('""', text)
    while True:
        stripped = _MATCHERS.sub("", text)
        if stripped == text:
            break
        text = stripped
    text = _RANGE.sub("", text)
    text = _LABEL_LIST.sub(" ", text)
    text = _NUMBER_SUFFIX.sub("", text)
    names: set[str] = set()
    for match in _IDENT.finditer(text):
        ident, call = match.group(1), match.group(2)
        if call or ident.lower() in _KEYWORDS:
            continue
        if ident == "label_values":
            continue
        names.add(ident)
    # label_values(metric, label): the second argument is a label, not a metric.
    for m in re.finditer(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)", text):
        names.discard(m.group(2))
        names.add(m.group(1))
    return names
