"""PNG plots of one run, or several overlaid for comparison (matplotlib, no display needed).

Figures are built on ``matplotlib.figure.Figure`` directly rather than through pyplot: no global
state, no GUI backend, safe in a container without a display. Each PNG records the titles of
its panels in a ``Panels`` text chunk, so a reader (or a test) can tell what it shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

Run = tuple[str, dict[str, Any]]  # (label, summary.json document)

THROUGHPUT = "throughput.png"
PERCENTILES = "latency_percentiles.png"
LATENCY_THROUGHPUT = "latency_throughput.png"
COST = "cost.png"


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


def _save(fig: Any, path: Path) -> None:
    panels = "; ".join(ax.get_title() for ax in fig.axes if ax.get_title())
    fig.savefig(
        path, format="png", dpi=100, metadata={"Title": path.stem, "Panels": panels, "Software": "eks-llm-stack bench"}
    )


def render_plots(runs: Sequence[Run], out_dir: Path) -> list[Path]:
    """Write the plots for ``runs`` into ``out_dir``; the cost plot only when some run had a price."""
    from matplotlib.figure import Figure

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    xlabel = _axis(runs[0][1]["levels"])[0] if runs and runs[0][1]["levels"] else "load level"
    many = len(runs) > 1

    def name(label: str, what: str) -> str:
        return f"{label}: {what}" if many else what

    # 1. throughput vs load
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    ax2 = ax.twinx()
    for label, doc in runs:
        _, xs = _axis(doc["levels"])
        ax.plot(
            xs, [lv["output_tokens_per_s"] for lv in doc["levels"]], marker="o", label=name(label, "output tokens/s")
        )
        ax2.plot(
            xs,
            [lv["requests_per_s"] for lv in doc["levels"]],
            marker="s",
            linestyle="--",
            label=name(label, "requests/s"),
        )
    ax.set_title("Throughput vs load")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("output tokens/s")
    ax2.set_ylabel("requests/s")
    ax.grid(True, alpha=0.3)
    (h1, l1), (h2, l2) = ax.get_legend_handles_labels(), ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left")
    written.append(out_dir / THROUGHPUT)
    _save(fig, written[-1])

    # 2. TTFT and ITL percentiles vs load
    fig = Figure(figsize=(12, 5), layout="constrained")
    for i, (metric, title) in enumerate(
        (("ttft_ms", "TTFT percentiles vs load"), ("itl_ms", "ITL percentiles vs load"))
    ):
        ax = fig.add_subplot(1, 2, i + 1)
        for label, doc in runs:
            _, xs = _axis(doc["levels"])
            for p, style in (("p50", "-"), ("p90", "--"), ("p99", ":")):
                ax.plot(
                    xs, [lv[metric].get(p) for lv in doc["levels"]], marker="o", linestyle=style, label=name(label, p)
                )
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("ms")
        ax.grid(True, alpha=0.3)
        ax.legend()
    written.append(out_dir / PERCENTILES)
    _save(fig, written[-1])

    # 3. latency-throughput curve with the knee
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    for label, doc in runs:
        xs = [lv["output_tokens_per_s"] for lv in doc["levels"]]
        ys = [lv["e2e_ms"].get("mean") for lv in doc["levels"]]
        ax.plot(xs, ys, marker="o", label=name(label, "mean E2E"))
        knee = doc.get("knee")
        if knee:
            ax.scatter(
                [knee["output_tokens_per_s"]],
                [knee["e2e_ms_mean"]],
                s=200,
                facecolors="none",
                edgecolors="red",
                linewidths=2,
                zorder=5,
            )
            where = (
                f"concurrency {knee['concurrency']}"
                if knee.get("concurrency") is not None
                else f"{knee.get('rate')} req/s"
            )
            ax.annotate(
                f"knee ({where}){'' if knee.get('reached') else ', not reached'}",
                (knee["output_tokens_per_s"], knee["e2e_ms_mean"]),
                textcoords="offset points",
                xytext=(-10, 15),
                ha="right",
                color="red",
            )
    ax.set_title("Latency vs throughput (knee = max throughput / latency)")
    ax.set_xlabel("output tokens/s")
    ax.set_ylabel("mean E2E latency (ms)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    written.append(out_dir / LATENCY_THROUGHPUT)
    _save(fig, written[-1])

    # 4. cost per 1M tokens vs load
    priced = [(label, doc) for label, doc in runs if any(lv.get("cost_per_1m_tokens_usd") for lv in doc["levels"])]
    if priced:
        fig = Figure(figsize=(8, 5), layout="constrained")
        ax = fig.add_subplot()
        for label, doc in priced:
            _, xs = _axis(doc["levels"])
            ax.plot(
                xs,
                [lv.get("cost_per_1m_tokens_usd") for lv in doc["levels"]],
                marker="o",
                label=name(label, f"${doc['price']['hourly_usd']:g}/h"),
            )
        ax.set_title("Cost per 1M output tokens vs load")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("USD per 1M output tokens")
        ax.set_yscale("log")
        ax.grid(True, alpha=0.3, which="both")
        ax.legend()
        written.append(out_dir / COST)
        _save(fig, written[-1])
    return written
