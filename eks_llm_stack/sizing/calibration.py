"""Measured throughput from a ``bench run`` report, for ``size`` and ``cost``.

``summary.json`` (``eks_llm_stack/bench/results.py``) has one entry per load level with
``output_tokens_per_s`` (generated tokens / measurement window) and ``concurrency``. The
level with the highest output throughput is the one a replica sustains at saturation.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import ConfigError, Problem


def measured_throughput(run_dir: Path) -> tuple[float, int, str]:
    """(output tokens/s, concurrency of that level, description) of the best level of a run."""
    from ..bench.results import load_summary

    doc = load_summary(Path(run_dir))
    best: tuple[float, int] | None = None
    for level in doc["levels"]:
        if not isinstance(level, dict):
            continue
        tps = level.get("output_tokens_per_s")
        if isinstance(tps, (int, float)) and not isinstance(tps, bool) and math.isfinite(tps) and tps > 0:
            conc = level.get("concurrency")
            conc = int(conc) if isinstance(conc, (int, float)) and not isinstance(conc, bool) else 0
            if best is None or tps > best[0]:
                best = (float(tps), conc)
    if best is None:
        raise ConfigError(
            "throughput_from",
            [
                Problem(
                    str(run_dir),
                    "has no level with a positive output_tokens_per_s",
                    "pass the directory of a completed 'eks-llm-stack bench run'",
                )
            ],
        )
    target = doc.get("target") or {}
    where = f"{run_dir}/summary.json, model {target.get('model', '?')}"
    return best[0], best[1], where


__all__ = ["measured_throughput"]
