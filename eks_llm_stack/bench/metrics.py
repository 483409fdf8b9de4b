"""From request records to the figures of one load level, and the knee across levels.

Definitions (also written into every ``summary.json`` under ``definitions``) follow
``REFERENCE.md``; ``docs/benchmarking.md`` maps them to other harnesses' names.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..cost import token_cost
from .records import RequestRecord

PERCENTILES = (50, 90, 95, 99)

#: Every metric of a level: unit and definition. Written into summary.json as is.
DEFINITIONS: dict[str, dict[str, str]] = {
    "ttft_ms": {
        "unit": "ms",
        "definition": "time to first token: request sent -> first chunk carrying at least one generated token "
        "(role-only and empty chunks do not count); successful requests",
    },
    "itl_ms": {
        "unit": "ms",
        "definition": "inter-token latency per request: (t_last_token - t_first_token) / tokens generated after "
        "the first chunk; with one token per chunk this is (t_last - t_first) / (n - 1)",
    },
    "inter_chunk_gap_ms": {
        "unit": "ms",
        "definition": "gap between successive token-carrying chunks, all gaps of all successful requests pooled "
        "(equals ITL only when every chunk carries one token)",
    },
    "e2e_ms": {"unit": "ms", "definition": "end-to-end latency: request sent -> last byte of the response"},
    "request_output_tokens_per_s": {
        "unit": "tokens/s",
        "definition": "per-request output speed: output tokens / E2E latency",
    },
    "schedule_delay_ms": {
        "unit": "ms",
        "definition": "client queue / schedule delay: request due -> request sent; large values mean the client "
        "fell behind its schedule (coordinated omission)",
    },
    "output_tokens_per_s": {
        "unit": "tokens/s",
        "definition": "output tokens of successful requests / measurement window",
    },
    "total_tokens_per_s": {
        "unit": "tokens/s",
        "definition": "(prompt + output tokens) of successful requests / measurement window",
    },
    "requests_per_s": {"unit": "requests/s", "definition": "successful requests / measurement window"},
    "goodput_requests_per_s": {
        "unit": "requests/s",
        "definition": "request goodput: successful requests meeting every SLO (TTFT, ITL and, when set, E2E "
        "below their limits) / measurement window",
    },
    "goodput_output_tokens_per_s": {
        "unit": "tokens/s",
        "definition": "token goodput: output tokens of the requests meeting every SLO / measurement window",
    },
    "goodput_fraction": {"unit": "1", "definition": "share of all requests (errors included) that met every SLO"},
    "slo_attainment": {
        "unit": "1",
        "definition": "per objective (ttft, itl, e2e when set) and for all together: share of all requests "
        "(errors included, as misses) that met it",
    },
    "error_rate": {"unit": "1", "definition": "errors / requests of the level (warm-up left out)"},
    "window_s": {
        "unit": "s",
        "definition": "measurement window: first request sent -> last response finished, for this level",
    },
    "completed": {"unit": "requests", "definition": "requests that finished without error"},
    "errors": {"unit": "requests", "definition": "requests that ended in an error; by type in errors_by_type"},
    "cost_per_1m_tokens_usd": {
        "unit": "USD",
        "definition": "$/hour / (output_tokens_per_s * 3600) * 1e6, no intermediate rounding; null without a price",
    },
    "minutes_per_1m_tokens": {"unit": "min", "definition": "1e6 / output_tokens_per_s / 60"},
}

KNEE_DEFINITION = (
    "the load level with the highest power, output_tokens_per_s / mean E2E latency in seconds (Kleinrock's "
    "power): below it extra load buys throughput at little latency cost, beyond it latency grows faster than "
    "throughput. Needs at least 3 levels; 'reached' is false when the highest power is at the highest load "
    "tested."
)


@dataclass(frozen=True, kw_only=True)
class Slo:
    """Service-level objectives for goodput."""

    ttft_ms: float = 500.0
    """TTFT limit in ms (default 500, REFERENCE's interactive target)."""
    itl_ms: float = 50.0
    """ITL limit in ms (default 50, REFERENCE's streaming target)."""
    e2e_ms: float | None = None
    """End-to-end limit in ms (default None: no E2E objective)."""

    def met(self, r: RequestRecord) -> dict[str, bool]:
        """Which objectives a request met; a failed request meets none."""
        ttft, itl = r.ttft_ms, r.itl_ms
        out = {
            "ttft": r.ok and ttft is not None and ttft < self.ttft_ms,
            "itl": r.ok and (itl is None or itl < self.itl_ms),
        }
        if self.e2e_ms is not None:
            out["e2e"] = r.ok and r.e2e_ms < self.e2e_ms
        out["all"] = all(out.values())
        return out


def distribution(values: Sequence[float]) -> dict[str, float | int | None]:
    """p50/p90/p95/p99 (linear interpolation), mean, sample standard deviation, min, max and count."""
    xs = sorted(values)
    out: dict[str, float | int | None] = {f"p{p}": _percentile(xs, p) for p in PERCENTILES}
    out["mean"] = statistics.fmean(xs) if xs else None
    out["stdev"] = statistics.stdev(xs) if len(xs) >= 2 else (0.0 if xs else None)
    out["min"] = xs[0] if xs else None
    out["max"] = xs[-1] if xs else None
    out["count"] = len(xs)
    return out


def _percentile(xs: Sequence[float], p: float) -> float | None:
    if not xs:
        return None
    k = (len(xs) - 1) * p / 100.0
    lo = math.floor(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summarize_level(
    records: Sequence[RequestRecord],
    *,
    level: int,
    load: dict[str, Any],
    slo: Slo,
    hourly_usd: float | None,
) -> dict[str, Any]:
    """Every metric of one load level. ``load`` holds ``concurrency`` or ``rate`` (and what shaped it).

    Warm-up requests are left out of every figure and counted under ``warmup_requests``.
    """
    warm = sum(1 for r in records if r.warmup)
    records = [r for r in records if not r.warmup]
    ok = [r for r in records if r.ok]
    failed = [r for r in records if not r.ok]
    window_s = 0.0
    if records:
        window_s = (max(r.done_ns for r in records) - min(r.sent_ns for r in records)) / 1e9
    out_tokens = sum(r.output_tokens for r in ok)
    prompt_tokens = sum(r.prompt_tokens or 0 for r in ok)
    itls = [x for r in ok if (x := r.itl_ms) is not None]
    ttfts = [x for r in ok if (x := r.ttft_ms) is not None]
    met = [slo.met(r) for r in records]
    good = [r for r, m in zip(records, met, strict=True) if m["all"]]
    attainment = {k: (sum(m[k] for m in met) / len(met)) if met else None for k in (met[0] if met else ())}
    examples: dict[str, str] = {}
    for r in failed:
        if r.error and r.error not in examples:
            examples[r.error] = r.error_detail or r.error
    per_s = (lambda n: n / window_s) if window_s > 0 else (lambda n: 0.0)
    tput = per_s(out_tokens)
    cost = token_cost(hourly_usd, tput) if (hourly_usd is not None and tput > 0) else None
    sources = Counter(r.token_source for r in ok)
    summary: dict[str, Any] = {
        "level": level,
        "concurrency": load.get("concurrency"),
        "rate": load.get("rate"),
        **{k: v for k, v in load.items() if k not in ("concurrency", "rate")},
        "requests": len(records),
        "warmup_requests": warm,
        "completed": len(ok),
        "errors": len(failed),
        "errors_by_type": dict(sorted(Counter(r.error for r in failed if r.error).items())),
        "error_examples": dict(sorted(examples.items())),
        "error_rate": (len(failed) / len(records)) if records else None,
        "window_s": window_s,
        "ttft_ms": distribution(ttfts),
        "itl_ms": distribution(itls),
        "e2e_ms": distribution([r.e2e_ms for r in ok]),
        "inter_chunk_gap_ms": distribution([g for r in ok for g in r.inter_chunk_gaps_ms]),
        "request_output_tokens_per_s": distribution([x for r in ok if (x := r.output_tokens_per_s) is not None]),
        "schedule_delay_ms": distribution([r.schedule_delay_ms for r in records]),
        "output_tokens": out_tokens,
        "prompt_tokens": prompt_tokens,
        "output_tokens_per_s": tput,
        "total_tokens_per_s": per_s(out_tokens + prompt_tokens),
        "requests_per_s": per_s(len(ok)),
        "goodput_requests_per_s": per_s(len(good)),
        "goodput_fraction": (len(good) / len(records)) if records else None,
        "goodput_output_tokens_per_s": per_s(sum(r.output_tokens for r in good)),
        "slo_attainment": attainment,
        "token_count_source": dict(sorted(sources.items())),
        "token_counts_estimated": any(s != "usage" for s in sources),
        "cost_per_1m_tokens_usd": cost.usd_per_1m_tokens if cost else None,
        "minutes_per_1m_tokens": (1e6 / tput / 60.0) if tput > 0 else None,
    }
    return summary


def find_knee(levels: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The knee of the latency-throughput curve (see :data:`KNEE_DEFINITION`), or ``None``."""
    candidates = [
        (lv["output_tokens_per_s"] / (lv["e2e_ms"]["mean"] / 1e3), i)
        for i, lv in enumerate(levels)
        if lv.get("completed") and lv["e2e_ms"].get("mean") and lv["output_tokens_per_s"] > 0
    ]
    if len(candidates) < 3:
        return None
    power, index = max(candidates)
    lv = levels[index]
    # "Highest load tested" by load, not by order: an SLA sweep runs its levels out of order.
    key = "concurrency" if all(x.get("concurrency") is not None for x in levels) else "rate"
    loads = [x.get(key) for x in levels]
    known = [float(v) for v in loads if v is not None]
    highest = lv.get(key) == max(known) if len(known) == len(loads) else index == len(levels) - 1
    return {
        "index": index,
        "level": lv["level"],
        "concurrency": lv.get("concurrency"),
        "rate": lv.get("rate"),
        "power": power,
        "output_tokens_per_s": lv["output_tokens_per_s"],
        "e2e_ms_mean": lv["e2e_ms"]["mean"],
        "reached": not highest,
        "definition": KNEE_DEFINITION,
    }
