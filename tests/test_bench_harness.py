"""The harness against the simulator with known timings: its numbers must match the truth.

Timings are small (tens of ms) so the module runs in a few seconds. On a shared, loaded 2-core
machine the event loop wakes late by a varying amount, on the server's side as on the client's,
so the harness is compared with what the simulator itself recorded for the same requests (its
own TTFT and ITL, and the perf_counter instants it received each request and wrote its first
token: the same clock as the harness's, in the same process). Lower bounds are tight (causality:
nothing arrives before it was written, and the simulator never writes more than 2 ms early),
upper bounds loose, and each tolerance stays well inside the error a wrong formula makes (the
naive ITL denominator is 1 ms off in the multi-token case; a counted role chunk makes TTFT ~0).
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

import pytest

from eks_llm_stack.bench.harness import RunState, Target, arrival_offsets_s, run_level, run_levels
from eks_llm_stack.bench.metrics import Slo, summarize_level
from eks_llm_stack.bench.simulator import SimulatorConfig, running
from eks_llm_stack.bench.workload import LengthSpec, LevelSpec

MODEL = "simulated-model"


def measure(
    sim: SimulatorConfig, spec: LevelSpec, *, api: str = "completions", timeout_s: float = 10.0
) -> dict[str, Any]:
    """Run one level against a fresh simulator; return the level summary and its records."""

    async def go() -> dict[str, Any]:
        async with running(sim) as (server, url):
            state = RunState()
            records = await run_level(
                Target(url=url, model=MODEL, api=api, timeout_s=timeout_s), spec, level=0, state=state
            )
            truth = list(server.timings)
        load = spec.load()
        return {
            "summary": summarize_level(records, level=0, load=load, slo=Slo(), hourly_usd=None),
            "records": records,
            # (TTFT ms, ITL ms, received s, first token written s) per finished request, in the
            # order the simulator finished them (the order they were sent, at concurrency 1).
            "truth": truth,
        }

    return asyncio.run(go())


def _median(xs: list[float]) -> float:
    return statistics.median(xs)


#: Slack for the causal checks: the simulator stamps its first-token time just after the write
#: returns, so a read on another thread could in principle see the bytes a hair earlier.
_CAUSAL_SLACK_MS = 0.5


def level(concurrency: int = 1, requests: int = 4, output: int = 16) -> LevelSpec:
    return LevelSpec(concurrency=concurrency, requests=requests, output=LengthSpec(values=(output,)))


def test_ttft_and_itl_match_the_simulator() -> None:
    got = measure(SimulatorConfig(ttft_ms=30, itl_ms=5), level(requests=8))
    records, truth = got["records"], got["truth"]
    assert len(records) == len(truth) == 8
    for r, (_, _, received_s, written_s) in zip(records, truth, strict=True):
        # Causality, per request: sent before the server had it, first token read after it was written.
        assert r.sent_ns / 1e6 <= received_s * 1e3 + _CAUSAL_SLACK_MS
        assert r.chunk_ns[0] / 1e6 >= written_s * 1e3 - _CAUSAL_SLACK_MS
    # Never below the configured 30 ms by more than the simulator's 2 ms early wake-up.
    assert got["summary"]["ttft_ms"]["min"] >= 30.0 - 2.5
    # What the harness adds on top of the server's own TTFT: loosely bounded (machine load).
    assert _median([r.ttft_ms - t[0] for r, t in zip(records, truth, strict=True)]) < 10.0
    # ITL against the simulator's own figure for the same request; dividing by n instead of n - 1
    # would be 0.31 ms off.
    assert _median([abs(r.itl_ms - t[1]) for r, t in zip(records, truth, strict=True)]) < 0.2


def test_multi_token_chunks_use_the_tokens_after_the_first_chunk() -> None:
    # 16 tokens, 4 per chunk: chunks at 30, 50, 70, 90 ms. ITL = 60 ms / 12 tokens = 5 ms,
    # where (t_last - t_first) / (n - 1) would say 4 ms.
    got = measure(SimulatorConfig(ttft_ms=30, itl_ms=5, tokens_per_chunk=4), level(requests=8))
    pairs = list(zip(got["records"], got["truth"], strict=True))
    assert _median([abs(r.itl_ms - t[1]) for r, t in pairs]) < 0.3


def test_multi_token_chunks_report_the_chunk_gap_separately() -> None:
    got = measure(SimulatorConfig(ttft_ms=30, itl_ms=5, tokens_per_chunk=4), level(requests=8))
    pairs = list(zip(got["records"], got["truth"], strict=True))
    # A request's mean chunk gap is (t_last - t_first) / 3 chunks: 4 x the simulator's own ITL
    # (12 tokens over 3 gaps), 20 ms, where an ITL reported as the gap would be 5 ms.
    mean_gaps = [statistics.fmean(r.inter_chunk_gaps_ms) for r, _ in pairs]
    assert _median([abs(g - 4 * t[1]) for g, (_, t) in zip(mean_gaps, pairs, strict=True)]) < 1.0
    # Pooled gaps of every request: 3 per request (4 chunks), apart from the ITL figure.
    assert got["summary"]["inter_chunk_gap_ms"]["count"] == 8 * 3


def test_token_counts_come_from_continuous_usage() -> None:
    got = measure(SimulatorConfig(ttft_ms=5, itl_ms=1, tokens_per_chunk=3), level(output=10))
    rec = got["records"][0]
    assert (rec.chunk_tokens, rec.token_source) == ([3, 3, 3, 1], "usage")
    assert got["summary"]["token_counts_estimated"] is False


def test_chat_role_only_first_chunk_does_not_count_as_first_token() -> None:
    # The simulator sends the role chunk at once and the first token 40 ms later.
    got = measure(SimulatorConfig(ttft_ms=40, itl_ms=2), level(), api="chat")["summary"]
    assert got["completed"] == 4
    # The simulator centres its emissions on the schedule by waking up to 2 ms early (see
    # Simulator._sleep_until); a counted role chunk would make the TTFT about 0.
    assert got["ttft_ms"]["min"] >= 40.0 - 2.5


def test_chat_counts_every_generated_token() -> None:
    got = measure(SimulatorConfig(ttft_ms=5, itl_ms=1), level(output=12), api="chat")
    assert [r.output_tokens for r in got["records"]] == [12, 12, 12, 12]


def test_server_errors_are_counted_by_type_not_raised() -> None:
    got = measure(SimulatorConfig(error_rate=1.0), level())["summary"]
    assert (got["completed"], got["errors"], got["errors_by_type"]) == (0, 4, {"http_5xx": 4})


def test_requests_past_the_timeout_are_timeouts() -> None:
    got = measure(SimulatorConfig(stall_rate=1.0), level(concurrency=2, requests=2), timeout_s=0.3)["summary"]
    assert got["errors_by_type"] == {"timeout": 2}


def test_streams_cut_mid_body_are_disconnects() -> None:
    got = measure(SimulatorConfig(ttft_ms=5, itl_ms=1, disconnect_rate=1.0), level(requests=2))["summary"]
    assert got["errors_by_type"] == {"disconnect": 2}


def test_malformed_sse_is_counted_and_the_run_goes_on() -> None:
    got = measure(SimulatorConfig(ttft_ms=5, itl_ms=1, malformed_rate=1.0), level(requests=3))["summary"]
    assert got["errors_by_type"] == {"malformed_sse": 3}


def test_mixed_faults_add_up_to_every_request() -> None:
    sim = SimulatorConfig(ttft_ms=2, itl_ms=1, error_rate=0.25, disconnect_rate=0.25, malformed_rate=0.25, seed=7)
    got = measure(sim, level(concurrency=4, requests=40, output=4))["summary"]
    assert got["completed"] + sum(got["errors_by_type"].values()) == 40
    assert set(got["errors_by_type"]) == {"http_5xx", "disconnect", "malformed_sse"}


def test_unknown_model_is_a_client_error() -> None:
    async def go() -> Any:
        async with running(SimulatorConfig(model="other")) as (_, url):
            state = RunState()
            return await run_level(Target(url=url, model=MODEL), level(requests=1), level=0, state=state)

    (rec,) = asyncio.run(go())
    assert (rec.error, rec.status) == ("http_4xx", 404)


def test_closed_loop_stops_at_the_request_count() -> None:
    got = measure(SimulatorConfig(ttft_ms=1, itl_ms=0), level(concurrency=3, requests=7, output=2))
    assert len(got["records"]) == 7


def test_closed_loop_stops_issuing_at_the_duration() -> None:
    spec = LevelSpec(concurrency=2, duration_s=0.3, output=LengthSpec(values=(4,)))
    got = measure(SimulatorConfig(ttft_ms=20, itl_ms=5), spec)["records"]
    first = min(r.sent_ns for r in got)
    # Each request takes >= 35 ms: two workers fit at most 2 x ceil(300 / 35) = 18 sends. (The
    # lower bound is one request per worker: a loaded machine may fit no second one.)
    assert 2 <= len(got) <= 18
    assert max(r.sent_ns - first for r in got) < 0.3e9


def test_connection_pool_is_not_capped_at_100() -> None:
    # 120 requests at once, each taking 500 ms to its first token: with a pool of 100 the last
    # 20 could only reach the server once a first response had finished, >= 498 ms after the
    # first arrival. The simulator's own arrival times say when each request got there.
    got = measure(SimulatorConfig(ttft_ms=500, itl_ms=0), level(concurrency=120, requests=120, output=1))
    assert got["summary"]["completed"] == 120
    received = [t[2] for t in got["truth"]]
    assert max(received) - min(received) < 0.4
    # ... and each request's own wait for a connection shows as schedule delay, not hidden.
    assert got["summary"]["schedule_delay_ms"]["max"] < 400.0


def test_open_loop_sends_on_schedule() -> None:
    spec = LevelSpec(rate=50.0, arrival="constant", duration_s=0.2, output=LengthSpec(values=(2,)))
    got = measure(SimulatorConfig(ttft_ms=5, itl_ms=1), spec)
    assert len(got["records"]) == 10
    assert got["summary"]["schedule_delay_ms"]["p50"] < 20.0


def test_poisson_arrivals_have_the_requested_mean_rate() -> None:
    offsets = arrival_offsets_s(LevelSpec(rate=100.0, arrival="poisson", requests=2000), seed=3, level=0)
    assert len(offsets) == 2000
    assert offsets[-1] / len(offsets) == pytest.approx(0.01, rel=0.1)


def test_constant_arrivals_are_evenly_spaced_within_the_duration() -> None:
    offsets = arrival_offsets_s(LevelSpec(rate=4.0, arrival="constant", duration_s=1.0), seed=0, level=0)
    assert offsets == [0.0, 0.25, 0.5, 0.75]


def test_interrupted_run_keeps_finished_requests_only() -> None:
    async def go() -> RunState:
        async with running(SimulatorConfig(ttft_ms=30, itl_ms=10)) as (_, url):
            state = RunState()
            task = asyncio.create_task(
                run_levels(Target(url=url, model=MODEL), (level(concurrency=2, requests=50, output=10),), state=state)
            )
            # About 3 s of work in all: cancel once a few requests are done (however loaded the machine).
            for _ in range(200):
                if len(state.of_level(0)) >= 3:
                    break
                await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return state

    state = asyncio.run(go())
    finished = state.of_level(0)
    assert 0 < len(finished) < 50
    assert all(r.ok and r.output_tokens == 10 for r in finished)


def test_warmup_requests_are_sent_first_and_left_out_of_the_figures() -> None:
    spec = LevelSpec(concurrency=1, requests=3, warmup=2, output=LengthSpec(values=(2,)))
    got = measure(SimulatorConfig(ttft_ms=1, itl_ms=0), spec)
    assert [r.warmup for r in got["records"]] == [True, True, False, False, False]
    assert (got["summary"]["requests"], got["summary"]["warmup_requests"]) == (3, 2)
