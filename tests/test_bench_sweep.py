"""SLA sweep: bisection to the highest load meeting the SLOs, and whether it was reached."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from eks_llm_stack.bench.sweep import bisect
from eks_llm_stack.cli import main
from tests.test_bench_robustness import MODEL, simulator


def _sweep(limit: float, lo: float, hi: float, integer: bool = True) -> tuple[dict[str, Any], list[float]]:
    tried: list[float] = []

    async def run_one(x: float) -> dict[str, Any]:
        tried.append(x)
        return {"goodput_fraction": 1.0 if x <= limit else 0.5}

    return asyncio.run(bisect(run_one, lo=lo, hi=hi, integer=integer, attainment=0.9)), tried


def test_bisection_finds_the_last_passing_concurrency() -> None:
    result, tried = _sweep(limit=23, lo=1, hi=256)
    assert (result["best"], result["first_missing"], result["reached"]) == (23, 24, True)
    assert tried[:2] == [1, 256] and len(tried) <= 2 + 8


def test_rate_bisection_stops_within_five_percent() -> None:
    result, _ = _sweep(limit=7.3, lo=0.5, hi=50, integer=False)
    assert result["reached"] and result["best"] <= 7.3 < result["first_missing"] <= result["best"] * 1.05


def test_a_range_that_does_not_bracket_the_limit_says_so() -> None:
    above, tried = _sweep(limit=1000, lo=1, hi=64)
    assert (above["best"], above["reached"], tried) == (64, False, [1, 64])
    assert "still meets" in above["why"]
    below, _ = _sweep(limit=0, lo=1, hi=64)
    assert below["best"] is None and below["reached"] is False and "already misses" in below["why"]


def test_sla_sweep_against_a_server_that_saturates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 4 generating at once, 10 ms TTFT, 20 tokens at 2 ms: queueing pushes TTFT past 80 ms beyond ~8 users.
    with simulator(ttft_ms=10, itl_ms=2, max_concurrency=4) as (_, url):
        code = main(
            [
                "bench",
                "run",
                "--url",
                url,
                "--model",
                MODEL,
                "--sla-sweep",
                "concurrency",
                "--sweep-range",
                "1:32",
                "--requests",
                "32",
                "--output-tokens",
                "20",
                "--slo-ttft-ms",
                "80",
                "--out",
                str(tmp_path / "s"),
                "--no-progress",
                "--no-plots",
            ]
        )
    assert code == 0
    doc = json.loads((tmp_path / "s" / "summary.json").read_text())
    sweep = doc["sla_sweep"]
    assert sweep["reached"] is True and 1 <= sweep["best"] <= 16 and sweep["first_missing"] == sweep["best"] + 1
    assert len(doc["levels"]) == len(sweep["trials"])
    assert "SLA sweep: highest concurrency meeting the SLOs is" in capsys.readouterr().err


def test_sweep_options_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "run", "--url", "http://x:1", "--model", "m", "--sla-sweep", "concurrency", "--sweep-range", "8:2"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "--sweep-range: must be LO:HI" in err and "--sla-sweep: each trial level needs a bound" in err
