"""A run's results on disk: ``summary.json``, ``requests.jsonl`` and ``summary.csv``.

``summary.json`` is the contract other tools read (CI publishing, ``bench report``): a list
``levels``, one object per load level, plus the definitions and units of every metric, the knee
and what was measured against what.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ConfigError, Problem
from .harness import RunState, Target
from .metrics import DEFINITIONS, KNEE_DEFINITION, Slo, find_knee, summarize_level
from .sessions import SESSION_DEFINITIONS, session_figures
from .workload import LevelSpec

SCHEMA_VERSION = 1
SUMMARY = "summary.json"
REQUESTS = "requests.jsonl"
CSV = "summary.csv"
_DIST_KEYS = ("ttft_ms", "itl_ms", "e2e_ms", "inter_chunk_gap_ms", "schedule_delay_ms")
_STATS = ("p50", "p90", "p95", "p99", "mean", "stdev")


@dataclass(frozen=True, kw_only=True)
class Price:
    """What an hour of the instance costs, and where the figure came from."""

    hourly_usd: float
    """US dollars per hour."""
    source: str
    """``--hourly-usd`` or ``instance TYPE (catalog)``."""


def build_summary(
    state: RunState,
    *,
    target: Target,
    levels: Sequence[LevelSpec],
    slo: Slo,
    price: Price | None,
    scenario: str | None,
    interrupted: bool,
    started_at: dt.datetime,
    prices: dict[str, float] | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The summary.json document for everything measured in ``state``.

    ``prices``: $/hour by kind (``on_demand``, ``spot``, ``capacity_block``); each level gets its
    $/1M output tokens at every one of them (``cost_per_1m_tokens_usd_by_price``).
    """
    out_levels = []
    for i in range(min(state.levels_started, len(levels))):
        records = state.of_level(i)
        if not records:
            continue
        out_levels.append(
            summarize_level(
                records, level=i, load=levels[i].load(), slo=slo, hourly_usd=price.hourly_usd if price else None
            )
        )
    for lv in out_levels:
        lv["cost_per_1m_tokens_usd_by_price"] = cost_by_price(lv, prices or {})
        # Multi-turn sessions: figures per turn and per session (nothing for other levels).
        lv.update(session_figures(state.of_level(lv["level"])))
    finished = [r for r in state.records if r.done_ns]
    cpu_s = time.process_time() - state.cpu_start_s
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": f"eks-llm-stack {__version__}",
        "started_at": started_at.isoformat(timespec="seconds"),
        "target": {
            "url": target.url,
            "model": target.model,
            "api": target.api,
            "ignore_eos": target.ignore_eos,
            "timeout_s": target.timeout_s,
        },
        "scenario": scenario,
        "slo": asdict(slo),
        "price": asdict(price) if price else None,
        "prices_usd_per_hour": dict(prices or {}),
        "metadata": dict(metadata or {}),
        "interrupted": interrupted,
        "client": {
            "cpu_s": cpu_s,
            "cpu_s_per_request": (cpu_s / len(finished)) if finished else None,
            "clock": "time.perf_counter_ns, stamped when a read returned",
        },
        "definitions": definitions(out_levels),
        "knee": find_knee(out_levels),
        "knee_definition": KNEE_DEFINITION,
        "levels": out_levels,
    }


def definitions(levels: Sequence[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """The metric definitions of summary.json, with the session ones when a level ran sessions."""
    if any("sessions" in lv for lv in levels):
        return {**DEFINITIONS, **SESSION_DEFINITIONS}
    return DEFINITIONS


def cost_by_price(level: dict[str, Any], prices: dict[str, float]) -> dict[str, float | None]:
    """$/1M output tokens of a level at each hourly price (None when nothing was generated)."""
    tput = level.get("output_tokens_per_s") or 0.0
    return {k: (v / (tput * 3600.0) * 1e6 if tput > 0 else None) for k, v in prices.items()}


def run_metadata(
    state: RunState,
    *,
    started: dt.datetime,
    server: Any = None,
    dataset: Path | None = None,
    shard: tuple[int, int] = (0, 1),
) -> dict[str, Any]:
    """Who measured what, from where: harness, client host, command line, server, dataset, clock."""
    import hashlib
    import platform
    import socket
    import sys

    digest = None
    if dataset is not None:
        h = hashlib.sha256()
        with dataset.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        digest = f"sha256:{h.hexdigest()}"
    # The wall-clock time of the run's origin: requests.jsonl times are relative to it, and
    # `bench merge` lines up the runs of several machines with it.
    origin_unix_ns = time.time_ns() - (time.perf_counter_ns() - state.origin_ns)
    return {
        "harness": f"eks-llm-stack {__version__}",
        "command_line": list(sys.argv),
        "client_host": socket.gethostname(),
        "client_platform": f"{platform.system()} {platform.machine()} Python {platform.python_version()}",
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": None,
        "origin_unix_ns": origin_unix_ns,
        "shard": {"index": shard[0], "count": shard[1]},
        "dataset": {"path": str(dataset), "sha256": digest} if dataset is not None else None,
        "server": asdict(server) if server is not None else None,
    }


def write_results(out_dir: Path, summary: dict[str, Any], state: RunState) -> list[Path]:
    """Write summary.json, requests.jsonl and summary.csv; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / SUMMARY, out_dir / REQUESTS, out_dir / CSV]
    paths[0].write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    with paths[1].open("w", encoding="utf-8") as f:
        for r in state.records:
            if r.done_ns:
                f.write(json.dumps(r.to_json(state.origin_ns), separators=(",", ":")) + "\n")
    write_csv(paths[2], summary["levels"])
    return paths


def csv_row(level: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {
        k: level.get(k)
        for k in (
            "level",
            "concurrency",
            "rate",
            "requests",
            "completed",
            "errors",
            "window_s",
            "requests_per_s",
            "output_tokens_per_s",
            "total_tokens_per_s",
            "goodput_requests_per_s",
            "goodput_fraction",
            "cost_per_1m_tokens_usd",
            "minutes_per_1m_tokens",
        )
    }
    for key in _DIST_KEYS:
        for stat in _STATS:
            row[f"{key}_{stat}"] = level.get(key, {}).get(stat)
    row["errors_by_type"] = ";".join(f"{k}={v}" for k, v in level.get("errors_by_type", {}).items())
    return row


def write_csv(path: Path, levels: Sequence[dict[str, Any]]) -> None:
    rows = [csv_row(lv) for lv in levels]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else list(csv_row({})))
        writer.writeheader()
        writer.writerows(rows)


def load_summary(run_dir: Path) -> dict[str, Any]:
    """Read a run's summary.json, with a clear error when it is missing or not ours."""
    path = run_dir / SUMMARY
    fix = "pass a directory written by 'eks-llm-stack bench run --out DIR'"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("bench report", [Problem(str(run_dir), f"has no {SUMMARY}", fix)]) from None
    except ValueError as exc:
        raise ConfigError("bench report", [Problem(str(path), f"is not valid JSON ({exc})", fix)]) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("levels"), list):
        raise ConfigError("bench report", [Problem(str(path), "has no 'levels' list", fix)])
    return doc


class ResultWriter:
    """Writes a run as it goes: each request to requests.jsonl when it finishes, and summary.json
    and summary.csv after every level, so an interrupted run (SIGTERM, a Job deadline, Ctrl-C)
    keeps what it measured. Opening it checks that ``out_dir`` is writable, before any load.

    Request rows are buffered and flushed at most every ``flush_s`` seconds, at each level's
    end and on :meth:`close`: writing costs the event loop a few microseconds per request.
    """

    def __init__(self, out_dir: Path, origin_ns: int, *, flush_s: float = 0.5) -> None:
        fix = "pass an --out directory you can write to, e.g. --out ./bench-results/run1"
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            self._requests = (out_dir / REQUESTS).open("w", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                "bench run",
                [Problem("--out", f"cannot be written ({exc.strerror or exc})", fix, str(out_dir))],
            ) from None
        self.out_dir = out_dir
        self._origin_ns = origin_ns
        self._flush_ns = int(flush_s * 1e9)
        self._last_flush = time.perf_counter_ns()
        self.written = 0

    def on_done(self, record: Any) -> None:
        if not record.done_ns or record.error == "cancelled":
            return
        self._requests.write(json.dumps(record.to_json(self._origin_ns), separators=(",", ":")) + "\n")
        self.written += 1
        now = time.perf_counter_ns()
        if now - self._last_flush >= self._flush_ns:
            self._requests.flush()
            self._last_flush = now

    def write_summary(self, summary: dict[str, Any]) -> list[Path]:
        """summary.json (replaced atomically: a reader never sees half a file) and summary.csv."""
        self._requests.flush()
        path = self.out_dir / SUMMARY
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        tmp.replace(path)
        write_csv(self.out_dir / CSV, summary["levels"])
        return [path, self.out_dir / REQUESTS, self.out_dir / CSV]

    def close(self) -> None:
        if not self._requests.closed:
            self._requests.flush()
            self._requests.close()
