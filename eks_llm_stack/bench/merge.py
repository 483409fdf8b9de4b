"""``bench merge``: several harness processes' results of one load, as one run.

Percentiles are recomputed from the pooled raw samples (every request of every process), never
averaged: the p99 of two halves is not the mean of their p99s. Each run's request times are
relative to its own origin; ``metadata.origin_unix_ns`` (the wall-clock time of that origin)
puts them on one time line, so the merged measurement window and throughputs are those of the
whole load. A level's load is the sum of the parts: concurrency (users) and rate add up.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ConfigError, Problem
from .metrics import KNEE_DEFINITION, Slo, find_knee, summarize_level
from .records import RequestRecord
from .results import REQUESTS, SCHEMA_VERSION, SUMMARY, cost_by_price, definitions, load_summary
from .sessions import session_figures

_LOAD_KEYS = ("mode", "think_time_s", "ramp_s", "arrival", "burstiness", "prompt_length", "output_length")


def _records(run_dir: Path, origin_unix_ns: int) -> list[RequestRecord]:
    path = run_dir / REQUESTS
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(
            "bench merge", [Problem(str(run_dir), f"has no {REQUESTS}", "pass directories written by 'bench run'")]
        ) from None
    return [RequestRecord.from_json(json.loads(line), origin_unix_ns) for line in lines if line.strip()]


def wait_for_parts(dirs: Sequence[Path], *, timeout_s: float, poll_s: float = 1.0) -> None:
    """Wait until every directory holds a finished run (``summary.json`` with
    ``metadata.finished_at``), as harness 0 of an Indexed Job does before merging the parts on
    the shared volume. Past ``timeout_s`` the parts still missing are named, with what to do."""
    deadline = time.monotonic() + timeout_s
    while True:
        waiting = [d for d in dirs if not _finished(d)]
        if not waiting:
            return
        if time.monotonic() >= deadline:
            raise ConfigError(
                "bench merge",
                [
                    Problem(
                        str(d),
                        f"holds no finished run after {timeout_s:g} s",
                        "check that harness's pod (kubectl logs); merge the finished parts by hand if it failed",
                    )
                    for d in waiting
                ],
            )
        time.sleep(poll_s)


def _finished(run_dir: Path) -> bool:
    try:
        doc = json.loads((run_dir / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # not there yet, or being replaced
    return isinstance(doc, dict) and bool((doc.get("metadata") or {}).get("finished_at"))


def merge_runs(dirs: Sequence[Path]) -> tuple[dict[str, Any], list[RequestRecord], int]:
    """The merged summary, every request (times on the common clock) and the common origin."""
    docs = [load_summary(d) for d in dirs]
    problems = []
    for d, doc in zip(dirs, docs, strict=True):
        if not (doc.get("metadata") or {}).get("origin_unix_ns"):
            problems.append(
                Problem(str(d), "has no metadata.origin_unix_ns", "re-run it with this version of 'bench run'")
            )
    counts = {len(doc["levels"]) for doc in docs}
    if len(counts) > 1:
        problems.append(
            Problem(
                ", ".join(map(str, dirs)),
                f"the runs have different numbers of levels ({sorted(counts)})",
                "merge the parts of one load only (the same options, --shard I/N)",
            )
        )
    if problems:
        raise ConfigError("bench merge", problems)
    origins = [int(doc["metadata"]["origin_unix_ns"]) for doc in docs]
    records: list[RequestRecord] = []
    for d, origin in zip(dirs, origins, strict=True):
        records += _records(d, origin)
    first = docs[0]
    slo = Slo(**first.get("slo", {}))
    prices: dict[str, float] = dict(first.get("prices_usd_per_hour") or {})
    hourly = (first.get("price") or {}).get("hourly_usd")
    levels = []
    for i, lv in enumerate(first["levels"]):
        parts = [doc["levels"][i] for doc in docs]
        load: dict[str, Any] = {
            "concurrency": sum(p["concurrency"] for p in parts) if lv.get("concurrency") is not None else None,
            "rate": sum(p["rate"] for p in parts) if lv.get("rate") is not None else None,
        }
        load.update({k: lv[k] for k in _LOAD_KEYS if k in lv})
        level_no = lv["level"]
        mine = [r for r in records if r.level == level_no]
        summary = summarize_level(mine, level=level_no, load=load, slo=slo, hourly_usd=hourly)
        summary["cost_per_1m_tokens_usd_by_price"] = cost_by_price(summary, prices)
        # Sessions are whole within one harness (each takes a disjoint part of the set), so the
        # per-session figures pool like any other sample.
        summary.update(session_figures(mine))
        summary["parts"] = len(parts)
        levels.append(summary)
    merged = {
        "schema_version": SCHEMA_VERSION,
        "tool": f"eks-llm-stack {__version__}",
        "started_at": min(doc["started_at"] for doc in docs),
        "target": first["target"],
        "scenario": first.get("scenario"),
        "slo": first.get("slo"),
        "price": first.get("price"),
        "prices_usd_per_hour": prices,
        "interrupted": any(doc.get("interrupted") for doc in docs),
        "client": {"cpu_s": sum((doc.get("client") or {}).get("cpu_s") or 0.0 for doc in docs)},
        "metadata": {
            "harness": f"eks-llm-stack {__version__}",
            "merged_from": [str(d) for d in dirs],
            "parts": [doc.get("metadata") for doc in docs],
            "origin_unix_ns": min(origins),
            "server": (first.get("metadata") or {}).get("server"),
        },
        "definitions": definitions(levels),
        "knee": find_knee(levels),
        "knee_definition": KNEE_DEFINITION,
        "levels": levels,
    }
    return merged, records, min(origins)
