"""PNG plots of one run, or several overlaid for comparison (matplotlib, no display needed).

Figures are built on ``matplotlib.figure.Figure`` directly rather than through pyplot: no global
state, no GUI backend, safe in a container without a display. Each PNG records the titles of
its panels in a ``Panels`` text chunk, so a reader (or a test) can tell what it shows.

Rules that keep the plots honest: every value axis starts at 0 (an auto-zoomed axis turns
50.0 -> 52.8 ms into a cliff); the configured SLOs are drawn as dashed lines; each series has
its own colour and a legend entry (no twin axes sharing a colour); money is written as plain
dollars; a concurrency sweep spanning a decade or more gets a log x axis; a plot with nothing
to show (an all-failed run, no price) is not drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

Run = tuple[str, dict[str, Any]]  # (label, summary.json document)

THROUGHPUT = "throughput.png"
PERCENTILES = "latency_percentiles.png"
LATENCY_THROUGHPUT = "latency_throughput.png"
GOODPUT = "goodput.png"
COST = "cost.png"
TURNS = "turns.png"

_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
_SLO_COLOUR = "#d62728"


def _axis(levels: Sequence[dict[str, Any]]) -> tuple[str, list[float]]:
    """The x axis of "vs load" plots: whatever varies between levels."""
    for key, label in (("concurrency", "concurrency (requests in flight)"), ("rate", "arrival rate (requests/s)")):
        xs = [lv.get(key) for lv in levels]
        if all(x is not None for x in xs) and len(set(xs)) > 1:
            return label, [float(x) for x in xs if x is not None]
    prompts = [lv.get("prompt_length") for lv in levels]
    if all(isinstance(p, str) and p.isdigit() for p in prompts) and len(set(prompts)) > 1:
        return "prompt length (tokens)", [float(p) for p in prompts]  # type: ignore[arg-type]
    for key, label in (("concurrency", "concurrency (requests in flight)"), ("rate", "arrival rate (requests/s)")):
        xs = [lv.get(key) for lv in levels]
        if all(x is not None for x in xs):
            return label, [float(x) for x in xs if x is not None]
    return "load level", [float(i) for i in range(len(levels))]


def _finite(values: Sequence[Any]) -> bool:
    return any(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def _get(lv: dict[str, Any], key: str) -> Any:
    value: Any = lv
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


class _Palette:
    """One colour per series, in order of appearance."""

    def __init__(self) -> None:
        self._given: dict[str, str] = {}

    def __call__(self, series: str) -> str:
        if series not in self._given:
            self._given[series] = _COLOURS[len(self._given) % len(_COLOURS)]
        return self._given[series]


def _style_load_axis(ax: Any, xlabel: str, xs: Sequence[float]) -> None:
    ax.set_xlabel(xlabel)
    if xlabel.startswith("concurrency") and xs and min(xs) > 0 and max(xs) / min(xs) >= 10:
        ax.set_xscale("log")
        ax.set_xticks(sorted(set(xs)))
        ax.set_xticklabels([f"{x:g}" for x in sorted(set(xs))])
        ax.minorticks_off()
    else:
        ax.set_xlim(left=0)


def _from_zero(ax: Any) -> None:
    ax.set_ylim(bottom=0)
    top = ax.get_ylim()[1]
    if top <= 0:
        ax.set_ylim(0, 1)


def _slo_line(ax: Any, value: float | None, label: str) -> None:
    if value is not None:
        ax.axhline(value, color=_SLO_COLOUR, linestyle="--", linewidth=1.2, label=label)


def _save(fig: Any, path: Path) -> None:
    panels = "; ".join(ax.get_title() for ax in fig.axes if ax.get_title())
    fig.savefig(
        path, format="png", dpi=100, metadata={"Title": path.stem, "Panels": panels, "Software": "eks-llm-stack bench"}
    )


def build_figures(runs: Sequence[Run]) -> dict[str, Any]:
    """The figures for ``runs`` by file name; plots with nothing to show are left out."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    runs = [(label, doc) for label, doc in runs if any(lv.get("completed") for lv in doc["levels"])]
    if not runs:
        return {}
    # Lines join levels in order of load (an SLA sweep runs them out of order).
    runs = [
        (
            label,
            {
                **doc,
                "levels": [
                    lv for _, lv in sorted(zip(_axis(doc["levels"])[1], doc["levels"], strict=True), key=lambda t: t[0])
                ],
            },
        )
        for label, doc in runs
    ]
    figures: dict[str, Any] = {}
    xlabel = _axis(runs[0][1]["levels"])[0]
    all_xs = [x for _, doc in runs for x in _axis(doc["levels"])[1]]
    many = len(runs) > 1
    slo = runs[0][1].get("slo") or {}

    def name(label: str, what: str) -> str:
        return f"{label}: {what}" if many else what

    # 1. throughput vs load: two panels, never two scales on one.
    fig = Figure(figsize=(12, 5), layout="constrained")
    colour = _Palette()
    for i, (metrics, title, ylabel) in enumerate(
        (
            (
                (("output_tokens_per_s", "output tokens/s"), ("goodput_output_tokens_per_s", "token goodput")),
                "Output tokens/s vs load",
                "tokens/s",
            ),
            (
                (("requests_per_s", "requests/s"), ("goodput_requests_per_s", "request goodput")),
                "Requests/s vs load",
                "requests/s",
            ),
        )
    ):
        ax = fig.add_subplot(1, 2, i + 1)
        for label, doc in runs:
            _, xs = _axis(doc["levels"])
            for key, what in metrics:
                ys = [lv.get(key) for lv in doc["levels"]]
                if _finite(ys):
                    series = name(label, what)
                    style = "-" if "goodput" not in key else "--"
                    ax.plot(xs, ys, marker="o", linestyle=style, color=colour(series), label=series)
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        _style_load_axis(ax, xlabel, all_xs)
        _from_zero(ax)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left")
    figures[THROUGHPUT] = fig

    # 2. TTFT and ITL percentiles vs load, with the SLO.
    fig = Figure(figsize=(12, 5), layout="constrained")
    for i, (metric, title, limit) in enumerate(
        (
            ("ttft_ms", "TTFT percentiles vs load", slo.get("ttft_ms")),
            ("itl_ms", "ITL percentiles vs load", slo.get("itl_ms")),
        )
    ):
        ax = fig.add_subplot(1, 2, i + 1)
        colour = _Palette()
        for label, doc in runs:
            _, xs = _axis(doc["levels"])
            for p, style in (("p50", "-"), ("p90", "--"), ("p99", ":")):
                ys = [lv[metric].get(p) for lv in doc["levels"]]
                if _finite(ys):
                    series = name(label, p)
                    ax.plot(xs, ys, marker="o", linestyle=style, color=colour(series), label=series)
        _slo_line(ax, limit, f"SLO {limit:g} ms" if limit is not None else "")
        ax.set_title(title)
        ax.set_ylabel("ms")
        _style_load_axis(ax, xlabel, all_xs)
        _from_zero(ax)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best")
    figures[PERCENTILES] = fig

    # 3. latency-throughput curve with the knee.
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    colour = _Palette()
    for label, doc in runs:
        xs = [lv["output_tokens_per_s"] for lv in doc["levels"]]
        ys = [lv["e2e_ms"].get("mean") for lv in doc["levels"]]
        series = name(label, "mean E2E")
        ax.plot(xs, ys, marker="o", color=colour(series), label=series)
        knee = doc.get("knee")
        if knee:
            reached = bool(knee.get("reached"))
            where = (
                f"concurrency {knee['concurrency']}"
                if knee.get("concurrency") is not None
                else f"{knee.get('rate')} req/s"
            )
            ax.scatter(
                [knee["output_tokens_per_s"]],
                [knee["e2e_ms_mean"]],
                s=200,
                facecolors="none",
                edgecolors="black",
                linewidths=2,
                zorder=5,
                label=name(label, f"knee ({where})" if reached else f"best level ({where}), knee not reached"),
            )
    _slo_line(ax, slo.get("e2e_ms"), f"E2E SLO {slo.get('e2e_ms') or 0:g} ms")
    ax.set_title("Latency vs throughput (knee = max throughput / latency)")
    ax.set_xlabel("output tokens/s")
    ax.set_ylabel("mean E2E latency (ms)")
    ax.set_xlim(left=0)
    _from_zero(ax)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    figures[LATENCY_THROUGHPUT] = fig

    # 4. SLO attainment vs load.
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    colour = _Palette()
    for label, doc in runs:
        _, xs = _axis(doc["levels"])
        for key, what in (("all", "all SLOs"), ("ttft", "TTFT"), ("itl", "ITL"), ("e2e", "E2E")):
            ys = [
                (v * 100 if (v := (lv.get("slo_attainment") or {}).get(key)) is not None else None)
                for lv in doc["levels"]
            ]
            if _finite(ys):
                series = name(label, what)
                ax.plot(xs, ys, marker="o", linestyle="-" if key == "all" else ":", color=colour(series), label=series)
    target = (runs[0][1].get("sla_sweep") or {}).get("attainment_target")
    if target is not None and ax.lines:
        ax.axhline(target * 100, color=_SLO_COLOUR, linestyle="--", linewidth=1.2, label=f"target {target * 100:g} %")
    ax.set_title("SLO attainment vs load")
    ax.set_ylabel("requests meeting the SLO (%)")
    ax.set_ylim(0, 105)
    _style_load_axis(ax, xlabel, all_xs)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left")
    if ax.lines:
        figures[GOODPUT] = fig

    # 5. cost per 1M tokens vs load, at every price given.
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    colour = _Palette()
    for label, doc in runs:
        _, xs = _axis(doc["levels"])
        by_price = {
            k: [(lv.get("cost_per_1m_tokens_usd_by_price") or {}).get(k) for lv in doc["levels"]]
            for k in (doc.get("prices_usd_per_hour") or {})
        }
        if not by_price and doc.get("price"):
            by_price = {"on_demand": [lv.get("cost_per_1m_tokens_usd") for lv in doc["levels"]]}
        hourly = dict(doc.get("prices_usd_per_hour") or {})
        if not hourly and doc.get("price"):
            hourly = {"on_demand": doc["price"]["hourly_usd"]}
        for kind, ys in by_price.items():
            if _finite(ys):
                series = name(label, f"{kind.replace('_', ' ')} (${hourly.get(kind, 0):,.2f}/h)")
                ax.plot(xs, ys, marker="o", color=colour(series), label=series)
    if ax.lines:
        ax.set_title("Cost per 1M output tokens vs load")
        ax.set_ylabel("USD per 1M output tokens")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"${v:,.2f}"))
        _style_load_axis(ax, xlabel, all_xs)
        _from_zero(ax)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right")
        figures[COST] = fig

    # 6. chat sessions: TTFT by turn, one series per level (prefill grows with the conversation).
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    colour = _Palette()
    turns_seen: set[int] = set()
    for label, doc in runs:
        for lv in doc["levels"]:
            turns = [t for t in lv.get("turns") or () if t["ttft_ms"].get("p50") is not None]
            if not turns:
                continue
            turn_xs = [int(t["turn"]) for t in turns]
            turns_seen.update(turn_xs)
            series = name(label, f"{lv.get('concurrency')} users")
            ax.plot(
                turn_xs, [t["ttft_ms"]["p50"] for t in turns], marker="o", color=colour(series), label=f"{series} p50"
            )
            ax.plot(
                turn_xs,
                [t["ttft_ms"]["p99"] for t in turns],
                marker=".",
                linestyle=":",
                color=colour(series),
                label=f"{series} p99",
            )
    if ax.lines:
        _slo_line(ax, (runs[0][1].get("slo") or {}).get("ttft_ms"), "TTFT SLO")
        ax.set_title("TTFT by turn of the chat sessions")
        ax.set_xlabel("turn")
        ax.set_ylabel("TTFT (ms)")
        ax.set_xticks(sorted(turns_seen))
        _from_zero(ax)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left")
        figures[TURNS] = fig
    return figures


def render_plots(runs: Sequence[Run], out_dir: Path) -> list[Path]:
    """Write the plots for ``runs`` into ``out_dir``; returns the files written (none for an all-failed run)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, fig in build_figures(runs).items():
        written.append(out_dir / file_name)
        _save(fig, written[-1])
    return written
