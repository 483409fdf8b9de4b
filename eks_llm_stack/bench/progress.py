"""Live progress while a run goes (rich), and the tables printed at the end.

The live display refreshes four times a second from a background thread and reads counters
the event loop updates; it never touches the request path, so it costs the measurement nothing
but a little CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .records import RequestRecord
from .workload import LevelSpec


class LiveProgress:
    """One progress bar per load level: requests done, errors, recent TTFT."""

    def __init__(self, console: Console, enabled: bool = True) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[stats]}"),
            console=console,
            refresh_per_second=4,
            disable=not enabled,
        )
        self._task: Any = None
        self._done = 0
        self._errors = 0
        self._last_ttft: float | None = None

    def __enter__(self) -> LiveProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def start_level(self, spec: LevelSpec) -> None:
        self._done = self._errors = 0
        self._last_ttft = None
        self._task = self._progress.add_task(spec.label(), total=spec.requests, stats="")

    def on_done(self, record: RequestRecord) -> None:
        self._done += 1
        if not record.ok:
            self._errors += 1
        elif record.ttft_ms is not None:
            self._last_ttft = record.ttft_ms
        ttft = f"last TTFT {self._last_ttft:.1f} ms" if self._last_ttft is not None else ""
        self._progress.update(self._task, advance=1, stats=f"errors {self._errors}  {ttft}")


def _fmt(x: Any, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


def _load(lv: dict[str, Any]) -> str:
    if lv.get("concurrency") is not None:
        extra = (
            f" @{lv['prompt_length']}"
            if lv.get("prompt_length", "").isdigit() and int(lv["prompt_length"]) >= 4096
            else ""
        )
        ramp = f" ramp {lv['ramp_s']:g}s" if lv.get("ramp_s") else ""
        return f"c={lv['concurrency']}{ramp}{extra}"
    return f"{lv.get('rate'):g}/s {lv.get('arrival', '')}".strip()


def summary_table(summary: dict[str, Any], title: str = "benchmark") -> Table:
    t = Table(title=title)
    for col in (
        "load",
        "ok",
        "err",
        "req/s",
        "out tok/s",
        "TTFT p50",
        "TTFT p99",
        "ITL p50",
        "ITL p99",
        "E2E p50",
        "sched p99",
        "goodput",
        "good tok/s",
        "$/1M tok",
    ):
        t.add_column(col, justify="right")
    knee = (summary.get("knee") or {}).get("index")
    for i, lv in enumerate(summary["levels"]):
        t.add_row(
            _load(lv) + (" *knee" if i == knee else ""),
            str(lv["completed"]),
            str(lv["errors"]),
            _fmt(lv["requests_per_s"], ".2f"),
            _fmt(lv["output_tokens_per_s"]),
            _fmt(lv["ttft_ms"]["p50"]),
            _fmt(lv["ttft_ms"]["p99"]),
            _fmt(lv["itl_ms"]["p50"], ".2f"),
            _fmt(lv["itl_ms"]["p99"], ".2f"),
            _fmt(lv["e2e_ms"]["p50"]),
            _fmt(lv["schedule_delay_ms"]["p99"], ".2f"),
            _fmt(lv["goodput_fraction"] * 100 if lv.get("goodput_fraction") is not None else None, ".0f") + "%",
            _fmt(lv.get("goodput_output_tokens_per_s")),
            _fmt(lv.get("cost_per_1m_tokens_usd"), ".3f"),
        )
    return t


def comparison_table(runs: Sequence[tuple[str, dict[str, Any]]]) -> Table:
    """Levels matched by their load across runs; each later run shown with its change from the first."""
    t = Table(title="comparison (change vs " + runs[0][0] + ")")
    t.add_column("load")
    for label, _ in runs:
        for col in ("out tok/s", "TTFT p50", "ITL p50"):
            t.add_column(f"{label}\n{col}", justify="right")
    keys: list[tuple[Any, Any, Any]] = []
    for _, doc in runs:
        for lv in doc["levels"]:
            k = (lv.get("concurrency"), lv.get("rate"), lv.get("prompt_length"))
            if k not in keys:
                keys.append(k)
    for k in keys:
        row: list[dict[str, Any] | None] = [None] * len(runs)
        for j, (_, doc) in enumerate(runs):
            row[j] = next(
                (lv for lv in doc["levels"] if (lv.get("concurrency"), lv.get("rate"), lv.get("prompt_length")) == k),
                None,
            )
        cells = [_load(next(lv for lv in row if lv is not None))]
        base = row[0]
        for lv in row:
            for get in (
                lambda v: v["output_tokens_per_s"],
                lambda v: v["ttft_ms"]["p50"],
                lambda v: v["itl_ms"]["p50"],
            ):
                val = get(lv) if lv else None
                ref = get(base) if base else None
                delta = f" ({(val - ref) / ref * 100:+.1f}%)" if lv is not base and val is not None and ref else ""
                cells.append(_fmt(val) + delta)
        t.add_row(*cells)
    return t


def error_lines(summary: dict[str, Any]) -> list[str]:
    """Errors of the run by type, with one example each (the detail of the first such request)."""
    counts: dict[str, int] = {}
    examples: dict[str, str] = {}
    for lv in summary["levels"]:
        for kind, n in lv.get("errors_by_type", {}).items():
            counts[kind] = counts.get(kind, 0) + n
        for kind, detail in lv.get("error_examples", {}).items():
            examples.setdefault(kind, detail)
    if not counts:
        return []
    total = sum(lv["requests"] for lv in summary["levels"]) or 1
    lines = [f"errors: {sum(counts.values())} of {total} requests"]
    for kind, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {kind}: {n}, e.g. {examples.get(kind, '-')[:160]}")
    return lines


def knee_line(summary: dict[str, Any]) -> str:
    """The knee, and whether the sweep reached it."""
    knee = summary.get("knee")
    if not knee:
        return "knee: none - it needs at least 3 load levels with completed requests"
    where = (
        f"concurrency {knee['concurrency']}" if knee.get("concurrency") is not None else f"{knee.get('rate'):g} req/s"
    )
    if knee.get("reached"):
        return f"knee: {where} (level {knee['level']}), reached: higher load bought less throughput than latency"
    return (
        f"knee: not reached - the best level is the highest load tested ({where}); "
        "extend the sweep to find where latency turns"
    )
