"""Datasets: shared-prefix prompts, trace replay (and its shipped sample), unique repeats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eks_llm_stack.bench.harness import _Requests
from eks_llm_stack.bench.workload import LevelSpec, Prompt, load_trace, shared_prefix_prompts
from eks_llm_stack.cli import main
from eks_llm_stack.errors import ConfigError
from tests.test_bench_robustness import MODEL, simulator

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "docs" / "examples" / "sample-trace.jsonl"


def test_shared_prefix_groups_share_exactly_their_prefix() -> None:
    prompts = shared_prefix_prompts(groups=3, per_group=4, prefix_tokens=50, suffix_tokens=10, seed=1)
    assert len(prompts) == 12 and [p.group for p in prompts[:6]] == [0, 1, 2, 0, 1, 2]
    words = [p.text.split() for p in prompts]
    assert all(len(w) == 60 for w in words)
    by_group: dict[int | None, list[list[str]]] = {}
    for p, w in zip(prompts, words, strict=True):
        by_group.setdefault(p.group, []).append(w)
    prefixes = {g: {tuple(w[:50]) for w in ws} for g, ws in by_group.items()}
    assert all(len(v) == 1 for v in prefixes.values()) and len({next(iter(v)) for v in prefixes.values()}) == 3
    assert len({tuple(w) for w in words}) == 12  # every prompt unique


def test_repeated_dataset_prompts_are_made_unique() -> None:
    requests = _Requests(LevelSpec(concurrency=1, requests=6), (Prompt(text="a"), Prompt(text="b")), seed=0, level=0)
    texts = [requests.next()[0] for _ in range(6)]
    assert texts[:2] == ["a", "b"] and len(set(texts)) == 6


def test_the_shipped_sample_trace_loads() -> None:
    prompts, times = load_trace(SAMPLE)
    rows = [json.loads(x) for x in SAMPLE.read_text().splitlines()]
    assert len(prompts) == len(times) == len(rows) and times[0] == 0.0
    assert list(times) == sorted(times)
    assert [p.output_tokens for p in prompts] == [r["output_tokens"] for r in rows]


def test_a_bad_trace_names_the_line_and_the_format(tmp_path: Path) -> None:
    bad = tmp_path / "t.jsonl"
    bad.write_text(
        '{"timestamp_s": 1, "output_tokens": 4, "prompt": "x"}\n{"timestamp_s": 0.5, "output_tokens": 4, "prompt": "y"}\n{"nope": 1}\n'
    )
    with pytest.raises(ConfigError) as err:
        load_trace(bad)
    text = str(err.value)
    assert f"{bad}:2" in text and f"{bad}:3" in text and "timestamp_s" in text


def test_trace_replay_sends_at_the_recorded_times(tmp_path: Path) -> None:
    with simulator(ttft_ms=1, itl_ms=1) as (_, url):
        code = main(["bench", "run", "--url", url, "--model", MODEL, "--trace", str(SAMPLE), "--out", str(tmp_path / "r"), "--no-progress", "--no-plots"])  # fmt: skip
    assert code == 0
    _, times = load_trace(SAMPLE)
    rows = [json.loads(x) for x in (tmp_path / "r" / "requests.jsonl").read_text().splitlines()]
    scheduled = sorted(r["scheduled_ms"] for r in rows)
    offsets = [(t - scheduled[0]) / 1e3 for t in scheduled]
    assert offsets == pytest.approx(list(times), abs=1e-3)
    doc = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert doc["levels"][0]["arrival"] == "trace" and doc["metadata"]["dataset"]["sha256"].startswith("sha256:")


def test_shared_prefix_run(tmp_path: Path) -> None:
    with simulator(ttft_ms=1, itl_ms=0) as (_sim, url):
        code = main(["bench", "run", "--url", url, "--model", MODEL, "--shared-prefix", "2x3", "--prefix-tokens", "40", "--prompt-tokens", "5", "--concurrency", "2", "--requests", "6", "--output-tokens", "2", "--out", str(tmp_path / "r"), "--no-progress", "--no-plots"])  # fmt: skip
        assert code == 0
    rows = [json.loads(x) for x in (tmp_path / "r" / "requests.jsonl").read_text().splitlines()]
    assert {r["prompt_tokens"] for r in rows} == {45}


@pytest.mark.parametrize("subject", ["dataset", "trace", "sessions"])
def test_an_unreadable_input_file_names_the_file_and_the_fix(tmp_path: Path, subject: str) -> None:
    from eks_llm_stack.bench.sessions import load_sessions
    from eks_llm_stack.bench.workload import load_dataset

    missing = tmp_path / "missing.json"
    loader = {"dataset": load_dataset, "trace": load_trace, "sessions": load_sessions}[subject]
    with pytest.raises(ConfigError) as err:
        loader(missing)
    text = str(err.value)
    assert subject in text
    assert f"{missing}: cannot be read (No such file or directory)" in text and "pass a readable file" in text
