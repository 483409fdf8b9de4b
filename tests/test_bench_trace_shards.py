"""--trace with --shard I/N: each harness replays a disjoint part, together the whole trace, on one clock."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from eks_llm_stack.bench.workload import load_trace, shard_trace
from eks_llm_stack.cli import build_parser, main
from eks_llm_stack.cli.bench import plan_from_args
from tests.test_bench_merge import _free_port, _harness
from tests.test_bench_robustness import simulator

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "docs" / "examples" / "sample-trace.jsonl"


def _plan(*extra: str) -> dict[str, object]:
    args = build_parser().parse_args(["bench", "run", "--url", "http://127.0.0.1:1", "--model", "m", *extra])
    return plan_from_args(args)


def _fast_trace(path: Path, n: int = 20) -> Path:
    # Distinct prompt lengths (10 + i words) identify every request on the server's side.
    rows = [
        {"timestamp_s": round(0.1 * i, 3), "prompt": " ".join(["w"] * (10 + i)), "output_tokens": 2} for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_the_shards_of_a_trace_are_disjoint_and_together_the_whole_trace(count: int) -> None:
    prompts, times = load_trace(SAMPLE)
    whole = list(zip((p.text for p in prompts), times, strict=True))
    parts = []
    for i in range(count):
        plan = _plan("--trace", str(SAMPLE), "--shard", f"{i}/{count}")
        (level,) = plan["levels"]  # type: ignore[attr-defined]
        texts = [p.text for p in plan["prompts"]]  # type: ignore[attr-defined]
        assert level.requests == len(texts) == len(level.trace_offsets_s)
        parts.append(list(zip(texts, level.trace_offsets_s, strict=True)))
    union = [x for part in parts for x in part]
    # Disjoint (no request twice), complete (every request once), and on the trace's own clock
    # (offsets not re-based per shard).
    assert Counter(union) == Counter(whole)
    assert sorted(union, key=lambda x: x[1]) == sorted(whole, key=lambda x: x[1])
    if count > 1:
        assert all(0 < len(p) < len(whole) for p in parts)


def test_shard_trace_is_round_robin() -> None:
    _, times = load_trace(SAMPLE)
    prompts = tuple(load_trace(SAMPLE)[0])
    _, first = shard_trace(prompts, times, 0, 2)
    _, second = shard_trace(prompts, times, 1, 2)
    assert first == times[0::2] and second == times[1::2]


def test_more_harnesses_than_trace_requests_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = _fast_trace(tmp_path / "t.jsonl", n=2)
    argv = ["bench", "run", "--url", "http://127.0.0.1:1", "--model", "m", "--trace", str(trace), "--shard", "2/3"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--trace / --shard" in err and "gets none" in err and "at most as many harnesses" in err


def test_two_harnesses_replay_a_trace_together(tmp_path: Path) -> None:
    trace = _fast_trace(tmp_path / "trace.jsonl")
    _, times = load_trace(trace)
    port = _free_port()
    with simulator(ttft_ms=1, itl_ms=1) as (_, url):
        procs: list[subprocess.Popen[str]] = [
            _harness(
                url,
                tmp_path / f"part{i}",
                "--trace",
                str(trace),
                "--shard",
                f"{i}/2",
                "--barrier",
                f"127.0.0.1:{port}",
                concurrency=False,
            )
            for i in range(2)
        ]
        for proc in procs:
            assert proc.wait(timeout=120) == 0, proc.communicate()
    assert main(["bench", "merge", str(tmp_path / "part0"), str(tmp_path / "part1"), "--out", str(tmp_path / "m"), "--no-plots"]) == 0  # fmt: skip
    rows = [json.loads(x) for x in (tmp_path / "m" / "requests.jsonl").read_text().splitlines()]
    # Every trace request was sent exactly once (the prompt lengths identify them) ...
    assert sorted(r["prompt_tokens"] for r in rows) == [10 + i for i in range(20)]
    assert all(r["error"] is None for r in rows)
    # ... at its trace time on the shared clock: both harnesses started the level at one agreed
    # instant, so the merged schedule is the trace's. Due times, not send times, are compared:
    # they come from the schedule, so machine load does not move them; what is left is how late
    # each process woke at the agreed instant (30 ms allows for a loaded machine, where a process
    # may wait for a core). A shard on its own clock (re-based to its first request) would be off
    # by a whole trace step, 100 ms.
    by_prompt = {r["prompt_tokens"]: r["scheduled_ms"] for r in rows}
    start = by_prompt[10]
    got = [(by_prompt[10 + i] - start) / 1e3 for i in range(20)]
    assert got == pytest.approx(list(times), abs=30e-3)
