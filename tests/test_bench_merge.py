"""Load from several harness processes: --shard, the start barrier and `bench merge`.

Two real harness processes share one load against one simulator; their merged report must
equal a single process running the whole load, within measurement error."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from eks_llm_stack.bench.merge import merge_runs
from eks_llm_stack.bench.metrics import distribution
from eks_llm_stack.bench.workload import LevelSpec
from eks_llm_stack.cli import main
from eks_llm_stack.cli.bench import shard_level
from eks_llm_stack.errors import ConfigError
from tests.test_bench_robustness import MODEL, simulator

ROOT = Path(__file__).resolve().parents[1]
LOAD = ["--concurrency", "2,4", "--requests", "32", "--output-tokens", "10", "--no-progress"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _harness(url: str, out: Path, *extra: str, concurrency: bool = True) -> subprocess.Popen[str]:
    """A `bench run` process: LOAD (closed loop) plus ``extra``; ``concurrency=False`` drops LOAD's load."""
    load = LOAD if concurrency else ["--no-progress"]
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "eks_llm_stack.cli",
            "bench",
            "run",
            "--url",
            url,
            "--model",
            MODEL,
            *load,
            "--out",
            str(out),
            *extra,
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_shards_split_users_rate_and_requests() -> None:
    spec = LevelSpec(concurrency=5, requests=11, warmup=3)
    parts = [shard_level(spec, i, 2) for i in range(2)]
    assert [p.concurrency for p in parts] == [3, 2] and [p.requests for p in parts] == [6, 5]
    assert [p.warmup for p in parts] == [2, 1]
    assert shard_level(LevelSpec(rate=9.0, duration_s=5), 1, 3).rate == 3.0


def test_shard_options_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "run", "--url", "http://x:1", "--model", "m", "--concurrency", "1,4", "--shard", "2/2"]) == 2
    err = capsys.readouterr().err
    assert "--shard: must be I/N with 0 <= I < N" in err


def test_two_harnesses_merged_equal_one_harness_with_the_whole_load(tmp_path: Path) -> None:
    port = _free_port()
    with simulator(ttft_ms=20, itl_ms=4) as (sim, url):
        single = _harness(url, tmp_path / "single")
        assert single.wait(timeout=180) == 0, single.communicate()
        # What the simulator itself measured for each run (its own TTFT per request): the
        # reference both runs are held to, so load on the machine between the runs cancels out.
        truth_single = [t[0] for t in sim.timings]
        shards = [
            _harness(url, tmp_path / f"part{i}", "--shard", f"{i}/2", "--barrier", f"127.0.0.1:{port}")
            for i in range(2)
        ]
        for p in shards:
            assert p.wait(timeout=180) == 0, p.communicate()
        truth_merged = [t[0] for t in sim.timings][len(truth_single) :]
    assert main(["bench", "merge", str(tmp_path / "part0"), str(tmp_path / "part1"), "--out", str(tmp_path / "m")]) == 0
    merged = json.loads((tmp_path / "m" / "summary.json").read_text())
    one = json.loads((tmp_path / "single" / "summary.json").read_text())
    parts = [json.loads((tmp_path / f"part{i}" / "summary.json").read_text()) for i in range(2)]
    # Both shards started every level at the same agreed instant.
    starts = [p["metadata"]["barrier_starts_unix_ns"] for p in parts]
    assert starts[0] == starts[1] and len(starts[0]) == 2
    part_rows = [
        [json.loads(x) for x in (tmp_path / f"part{i}" / "requests.jsonl").read_text().splitlines()] for i in range(2)
    ]
    for m, s in zip(merged["levels"], one["levels"], strict=True):
        assert (m["concurrency"], m["requests"], m["completed"]) == (s["concurrency"], s["requests"], s["completed"])
        assert m["parts"] == 2
        assert m["ttft_ms"]["count"] == s["ttft_ms"]["count"] == 32
        # Pooled samples, exactly: the merged percentiles are those of both parts' requests together.
        pooled = sorted(r["ttft_ms"] for rows in part_rows for r in rows if r["level"] == m["level"])
        assert m["ttft_ms"] == pytest.approx(distribution(pooled), abs=1e-6)  # ns rounding of the files
        # Within measurement error of the single run: each is held to the simulator's own TTFT
        # for its requests (lower bound tight: nothing is faster than the server; upper bound
        # loose: what a client process starved of CPU adds, measured up to 18 ms with the two
        # cores saturated), instead of to each other across a changing load.
        for run, truth in ((m, truth_merged), (s, truth_single)):
            assert run["ttft_ms"]["p50"] >= statistics.median(truth) - 0.5
            assert run["ttft_ms"]["p50"] - statistics.median(truth) < 30.0
        assert m["itl_ms"]["p50"] == pytest.approx(s["itl_ms"]["p50"], abs=1.0)
        # A wrong merge (one part's window, halved throughput) is off by 2x.
        assert m["output_tokens_per_s"] == pytest.approx(s["output_tokens_per_s"], rel=0.4)
    rows = [json.loads(x) for x in (tmp_path / "m" / "requests.jsonl").read_text().splitlines()]
    level0 = sorted(r["ttft_ms"] for r in rows if r["level"] == 0)
    assert len(rows) == 64 and merged["levels"][0]["ttft_ms"]["max"] == level0[-1]


def test_merging_runs_of_different_loads_is_refused(tmp_path: Path) -> None:
    for name, levels in (("a", [{"level": 0}]), ("b", [{"level": 0}, {"level": 1}])):
        (tmp_path / name).mkdir()
        doc = {"levels": levels, "metadata": {"origin_unix_ns": 1}, "started_at": "x"}
        (tmp_path / name / "summary.json").write_text(json.dumps(doc))
        (tmp_path / name / "requests.jsonl").write_text("")
    with pytest.raises(ConfigError) as err:
        merge_runs([tmp_path / "a", tmp_path / "b"])
    assert "different numbers of levels" in str(err.value) and "--shard I/N" in str(err.value)
