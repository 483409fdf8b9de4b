"""What a new user trips over: bad --out, wrong URL/model/key, a server that does not stream,
errors hidden in a low exit code, SIGTERM losing the results; and goodput, gamma arrivals,
cost at several prices, run metadata and report.html."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from eks_llm_stack.bench.harness import arrival_offsets_s
from eks_llm_stack.bench.metrics import Slo, summarize_level
from eks_llm_stack.bench.preflight import parse_prefix_cache, prefix_cache_report
from eks_llm_stack.bench.progress import knee_line
from eks_llm_stack.bench.records import RequestRecord
from eks_llm_stack.bench.simulator import Simulator, SimulatorConfig, running
from eks_llm_stack.bench.workload import LevelSpec
from eks_llm_stack.cli import main

ROOT = Path(__file__).resolve().parents[1]
MODEL = "simulated-model"


@contextmanager
def simulator(**kw: object) -> Iterator[tuple[Simulator, str]]:
    """A simulator on its own event loop in a thread, so the CLI's asyncio.run can talk to it."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    got: list[tuple[Simulator, str]] = []
    stop = asyncio.Event()

    async def serve() -> None:
        async with running(SimulatorConfig(**kw)) as pair:  # type: ignore[arg-type]
            got.append(pair)
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield got[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


def run(url: str, out: Path, *extra: str, model: str = MODEL) -> int:
    return main(
        [
            "bench",
            "run",
            "--url",
            url,
            "--model",
            model,
            "--concurrency",
            "2",
            "--requests",
            "6",
            "--output-tokens",
            "4",
            "--out",
            str(out),
            "--no-progress",
            "--no-plots",
            *extra,
        ]
    )


def generated(sim: Simulator) -> int:
    return sim.stats.success["length"] + sim.stats.success["abort"]


# -- before any load -------------------------------------------------------------------------------


def test_unwritable_out_fails_before_any_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("")
    with simulator(ttft_ms=1, itl_ms=0) as (sim, url):
        assert run(url, tmp_path / "file" / "run") == 2
        assert generated(sim) == 0
    err = capsys.readouterr().err
    assert "--out: cannot be written" in err and "fix: pass an --out directory you can write to" in err


def test_base_url_with_v1_is_refused_with_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with simulator(ttft_ms=1, itl_ms=0) as (sim, url):
        assert run(url + "/v1", tmp_path / "run") == 2
        assert generated(sim) == 0
    err = capsys.readouterr().err
    assert "--url: ends in the API path" in err and f"--url {url}" in err


def test_wrong_model_name_names_the_served_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with simulator(ttft_ms=1, itl_ms=0) as (sim, url):
        assert run(url, tmp_path / "run", model="llama-3-8b") == 2
        assert generated(sim) == 0
    err = capsys.readouterr().err
    assert "--model: is not served here; the server serves simulated-model" in err
    assert "fix: pass --model simulated-model" in err
    assert not (tmp_path / "run" / "summary.json").exists()


def test_missing_and_wrong_api_keys_are_auth_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulator(ttft_ms=1, itl_ms=0, api_key="s3cret") as (sim, url):
        assert run(url, tmp_path / "a") == 2
        err = capsys.readouterr().err
        assert "--api-key-env: the server refused the request (HTTP 401" in err and "--api-key-env VAR" in err
        monkeypatch.setenv("KEY", "wrong")
        assert run(url, tmp_path / "b", "--api-key-env", "KEY") == 2
        assert "check the key" in capsys.readouterr().err
        monkeypatch.setenv("KEY", "s3cret")
        assert run(url, tmp_path / "c", "--api-key-env", "KEY") == 0
        assert generated(sim) == 6 + 1  # the load and the one preflight request


def test_a_server_that_does_not_stream_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with simulator(ttft_ms=1, itl_ms=0, ignore_stream=True) as (sim, url):
        assert run(url, tmp_path / "run") == 2
        assert generated(sim) == 1  # the preflight only
    err = capsys.readouterr().err
    assert "did not stream its answer" in err and "application/json" in err


def test_an_unreachable_server_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("http://127.0.0.1:9", tmp_path / "run") == 2
    assert "--url: the server cannot be reached" in capsys.readouterr().err


# -- errors ------------------------------------------------------------------------------------------


def test_error_rate_above_the_limit_exits_3_with_errors_by_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with simulator(ttft_ms=1, itl_ms=0, error_rate=0.5, seed=3) as (_, url):
        code = run(url, tmp_path / "run", "--requests", "20")
        err = capsys.readouterr().err
        assert code == 3
        assert "above --max-error-rate 5 %" in err
        assert "http_5xx:" in err and "e.g. HTTP 500:" in err and "simulated internal server error" in err
        assert run(url, tmp_path / "run2", "--requests", "20", "--max-error-rate", "100") == 0
    doc = json.loads((tmp_path / "run" / "summary.json").read_text())
    (level,) = doc["levels"]
    assert level["error_rate"] == level["errors"] / level["requests"] > 0.05
    assert level["error_examples"]["http_5xx"].startswith("HTTP 500")


def test_knee_says_whether_it_was_reached() -> None:
    assert "not reached" in knee_line({"knee": {"reached": False, "concurrency": 8, "level": 3}})
    assert "reached" in knee_line({"knee": {"reached": True, "concurrency": 4, "level": 2}})
    assert "at least 3 load levels" in knee_line({"knee": None})


# -- incremental results and signals ------------------------------------------------------------------


def test_sigterm_keeps_finished_requests_and_levels(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with simulator(ttft_ms=5, itl_ms=5) as (_, url):
        proc = subprocess.Popen(
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
                "--concurrency",
                "1,1,1",
                "--requests",
                "8",
                "--output-tokens",
                "8",
                "--out",
                str(out),
                "--no-progress",
                "--no-plots",
            ],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 60
            # The first level's summary is on disk while the second runs; requests as they finish.
            while not (out / "summary.json").exists():
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.02)
            first = json.loads((out / "summary.json").read_text())
            assert [lv["level"] for lv in first["levels"]] == [0] and first["interrupted"] is False
            assert len((out / "requests.jsonl").read_text().splitlines()) >= 8
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, err
    doc = json.loads((out / "summary.json").read_text())
    assert doc["interrupted"] is True and doc["levels"][0]["completed"] == 8
    assert doc["metadata"]["command_line"][1:6] == ["bench", "run", "--url", url, "--model"]
    rows = [json.loads(x) for x in (out / "requests.jsonl").read_text().splitlines()]
    assert len(rows) == sum(lv["requests"] for lv in doc["levels"])
    assert all(r["error"] is None for r in rows), "requests cut by the signal are left out, not errors"


# -- goodput, arrivals, cost, metadata -----------------------------------------------------------------


def _record(i: int, ttft_ms: float, itl_ms: float, tokens: int = 5, error: str | None = None) -> RequestRecord:
    r = RequestRecord(index=i, level=0, scheduled_ns=0, sent_ns=0, token_source="usage", error=error)
    if error is None:
        first = int(ttft_ms * 1e6)
        r.chunk_ns = [first + int(k * itl_ms * 1e6) for k in range(tokens)]
        r.chunk_tokens = [1] * tokens
    r.done_ns = (r.chunk_ns[-1] if r.chunk_ns else 1_000_000) + 1
    return r


def test_goodput_counts_requests_and_tokens_meeting_every_slo() -> None:
    records = [
        _record(0, 10, 5),  # meets all
        _record(1, 600, 5),  # TTFT miss, and E2E 620 ms misses the 400 ms objective
        _record(2, 10, 80),  # ITL miss
        _record(3, 10, 20, tokens=10),  # meets all: E2E 190 ms
        _record(4, 0, 0, error="http_5xx"),
    ]
    lv = summarize_level(records, level=0, load={}, slo=Slo(ttft_ms=500, itl_ms=50, e2e_ms=400), hourly_usd=None)
    assert lv["slo_attainment"] == {"ttft": 0.6, "itl": 0.6, "e2e": 0.6, "all": 0.4}
    assert lv["goodput_fraction"] == 0.4
    assert lv["goodput_output_tokens_per_s"] == pytest.approx(15 / lv["window_s"])
    assert lv["goodput_requests_per_s"] == pytest.approx(2 / lv["window_s"])


def test_gamma_arrivals_keep_the_rate_and_add_burstiness() -> None:
    def gaps(arrival: str, burstiness: float = 1.0) -> list[float]:
        spec = LevelSpec(rate=100.0, arrival=arrival, burstiness=burstiness, requests=4000)
        xs = arrival_offsets_s(spec, seed=1, level=0)
        return [b - a for a, b in itertools.pairwise(xs)]

    for k in (0.25, 4.0):
        g = gaps("gamma", k)
        assert statistics.fmean(g) == pytest.approx(0.01, rel=0.08)
        # Coefficient of variation of a gamma(k) is 1/sqrt(k): 2 for k = 0.25, 0.5 for k = 4.
        assert statistics.stdev(g) / statistics.fmean(g) == pytest.approx(k**-0.5, rel=0.15)


def test_bad_burstiness_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "run", "--url", "http://x:1", "--model", "m", "--rate", "5", "--duration", "1", "--burstiness", "0.5"])  # fmt: skip
    assert code == 2
    assert "--burstiness: needs --arrival gamma" in capsys.readouterr().err


def test_cost_at_every_price_metadata_and_report(tmp_path: Path) -> None:
    dataset = tmp_path / "prompts.jsonl"
    dataset.write_text('"hello there"\n"how are you"\n')
    with simulator(ttft_ms=1, itl_ms=1) as (_, url):
        code = main(
            [
                "bench",
                "run",
                "--url",
                url,
                "--model",
                MODEL,
                "--concurrency",
                "1,2,3",
                "--requests",
                "4",
                "--output-tokens",
                "4",
                "--out",
                str(tmp_path / "run"),
                "--no-progress",
                "--dataset",
                str(dataset),
                "--hourly-usd",
                "2.0",
                "--spot-hourly-usd",
                "0.8",
                "--capacity-block-hourly-usd",
                "1.5",
            ]
        )
    assert code == 0
    doc = json.loads((tmp_path / "run" / "summary.json").read_text())
    lv = doc["levels"][0]
    tput = lv["output_tokens_per_s"]
    assert lv["cost_per_1m_tokens_usd_by_price"] == pytest.approx(
        {
            "on_demand": 2.0 / (tput * 3600) * 1e6,
            "spot": 0.8 / (tput * 3600) * 1e6,
            "capacity_block": 1.5 / (tput * 3600) * 1e6,
        }
    )
    meta = doc["metadata"]
    assert meta["harness"].startswith("eks-llm-stack ") and isinstance(meta["command_line"], list)
    assert meta["server"]["models"] == [MODEL] and meta["server"]["version"].startswith("eks-llm-stack-simulator")
    assert meta["dataset"]["sha256"].startswith("sha256:") and meta["client_host"]
    assert meta["started_at"] <= meta["finished_at"]
    assert meta["prefix_cache"]["after"]["queries"] > meta["prefix_cache"]["before"]["queries"]
    page = (tmp_path / "run" / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 4 and "$ per 1M tokens (capacity block)" in page


def test_prefix_cache_counters_from_an_exposition() -> None:
    text = (
        "# TYPE vllm:prefix_cache_hits_total counter\n"
        'vllm:prefix_cache_hits_total{model_name="a"} 30\nvllm:prefix_cache_hits_total{model_name="b"} 10\n'
        'vllm:prefix_cache_queries_total{model_name="a"} 100\n'
    )
    before = parse_prefix_cache(text)
    assert before == {"hits": 40.0, "queries": 100.0}
    after = {"hits": 90.0, "queries": 200.0}
    assert prefix_cache_report(before, after)["hit_rate_during_run"] == pytest.approx(0.5)
    assert parse_prefix_cache("up 1\n") is None
