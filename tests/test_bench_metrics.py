"""Metric formulas, SSE token accounting and cost, on records and bytes built by hand."""

from __future__ import annotations

import json

import pytest

from eks_llm_stack.bench.metrics import Slo, distribution, find_knee, summarize_level
from eks_llm_stack.bench.records import RequestRecord
from eks_llm_stack.bench.sse import StreamAccumulator

MS = 1_000_000


def record(chunks_ms: list[float], tokens: list[int], *, done_ms: float | None = None, **kw: object) -> RequestRecord:
    r = RequestRecord(index=0, level=0, scheduled_ns=0, sent_ns=0, **kw)  # type: ignore[arg-type]
    r.chunk_ns = [round(t * MS) for t in chunks_ms]
    r.chunk_tokens = list(tokens)
    r.done_ns = round((done_ms if done_ms is not None else (chunks_ms[-1] if chunks_ms else 0)) * MS)
    r.token_source = "usage"
    return r


def sse(*events: object) -> bytes:
    return b"".join(b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n\n" for e in events)


def chat_chunk(content: str | None = None, role: bool = False, completion_tokens: int | None = None) -> dict:
    delta: dict = {"role": "assistant", "content": ""} if role else {"content": content}
    chunk: dict = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}
    if completion_tokens is not None:
        chunk["usage"] = {"prompt_tokens": 7, "completion_tokens": completion_tokens, "total_tokens": 7}
    return chunk


def final_usage(n: int) -> dict:
    return {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": n, "total_tokens": 7 + n}}


# -- formulas --------------------------------------------------------------------------------------


def test_itl_is_reference_formula_with_one_token_per_chunk() -> None:
    # REFERENCE's worked example: first token at 500 ms, last at 2500 ms, 50 tokens -> 2000/49.
    chunks = [500 + i * 2000 / 49 for i in range(50)]
    assert record(chunks, [1] * 50).itl_ms == pytest.approx(2000 / 49)


def test_itl_denominator_excludes_the_first_chunks_tokens() -> None:
    # 3 chunks of 4 tokens at 100, 140, 180 ms: 80 ms over the 8 tokens after the first chunk.
    assert record([100, 140, 180], [4, 4, 4]).itl_ms == pytest.approx(10.0)


def test_itl_is_undefined_for_a_single_chunk() -> None:
    assert record([100], [5]).itl_ms is None


def test_ttft_is_measured_from_send_to_first_token_chunk() -> None:
    assert record([123.5, 130], [1, 1]).ttft_ms == pytest.approx(123.5)


def test_distribution_reports_percentiles_mean_and_stdev() -> None:
    d = distribution([float(x) for x in range(1, 101)])
    assert (d["p50"], d["p90"], d["p99"], d["mean"]) == pytest.approx((50.5, 90.1, 99.01, 50.5))
    assert d["stdev"] == pytest.approx(29.011, abs=1e-3)


def test_empty_distribution_is_all_none() -> None:
    d = distribution([])
    assert d["p50"] is None and d["mean"] is None and d["count"] == 0


def test_goodput_counts_requests_meeting_both_slos() -> None:
    fast = record([100, 110], [1, 1], done_ms=1000)
    slow_ttft = record([600, 610], [1, 1], done_ms=1000)
    slow_itl = record([100, 200], [1, 1], done_ms=1000)
    got = summarize_level([fast, slow_ttft, slow_itl], level=0, load={"concurrency": 3}, slo=Slo(), hourly_usd=None)
    assert got["goodput_fraction"] == pytest.approx(1 / 3)


def test_throughput_is_over_the_measurement_window() -> None:
    a = record([10, 20], [50, 50], done_ms=1000)
    b = record([10, 20], [50, 50], done_ms=2000)
    got = summarize_level([a, b], level=0, load={"concurrency": 2}, slo=Slo(), hourly_usd=None)
    assert (got["output_tokens_per_s"], got["requests_per_s"]) == pytest.approx((100.0, 1.0))


def test_cost_is_null_without_a_price() -> None:
    got = summarize_level([record([10, 20], [1, 1])], level=0, load={"concurrency": 1}, slo=Slo(), hourly_usd=None)
    assert got["cost_per_1m_tokens_usd"] is None


# Red Hat's table (REFERENCE.md): $/h, tok/s, min per 1M, $ per 1M as printed (rounded along the way).
RED_HAT = [
    ("llama-2-7b g5.2xlarge", 1.21, 161.3, 103.32, 2.09),
    ("llama-2-7b g5.12xlarge", 5.67, 336.96, 49.46, 4.68),
    ("llama-2-13b g5.12xlarge", 5.67, 203.24, 82.01, 7.75),
    ("llama-2-13b g5.48xlarge", 8.14, 224.55, 74.22, 10.07),
    ("llama-2-70b g5.48xlarge", 8.14, 62.65, 266.05, 36.11),
    ("llama-2-70b p4d.24xlarge", 32.77, 155.18, 107.41, 58.66),
]


@pytest.mark.parametrize(("row", "hourly", "tps", "minutes", "usd"), RED_HAT, ids=[r[0] for r in RED_HAT])
def test_red_hat_cost_rows_reproduce_from_throughput_and_price(
    row: str, hourly: float, tps: float, minutes: float, usd: float
) -> None:
    # A 100 s window holding exactly tps * 100 output tokens: the level's throughput is the article's.
    r = record([0.0, 1.0], [1, round(tps * 100) - 1], done_ms=100_000)
    got = summarize_level([r], level=0, load={"concurrency": 10}, slo=Slo(), hourly_usd=hourly)
    assert got["output_tokens_per_s"] == pytest.approx(tps)
    assert got["minutes_per_1m_tokens"] == pytest.approx(minutes, rel=1e-3)
    assert got["cost_per_1m_tokens_usd"] == pytest.approx(usd, rel=1e-2)


def test_knee_is_the_level_of_highest_power() -> None:
    def lv(i: int, c: int, tput: float, e2e: float) -> dict:
        return {"level": i, "concurrency": c, "completed": 1, "output_tokens_per_s": tput, "e2e_ms": {"mean": e2e}}

    levels = [lv(0, 1, 100, 1000), lv(1, 8, 780, 1030), lv(2, 16, 800, 2000), lv(3, 32, 805, 4000)]
    knee = find_knee(levels)
    assert knee is not None and (knee["concurrency"], knee["reached"]) == (8, True)


def test_knee_needs_three_levels() -> None:
    one = {"level": 0, "completed": 1, "output_tokens_per_s": 1.0, "e2e_ms": {"mean": 1.0}}
    assert find_knee([one, {**one, "level": 1}]) is None


# -- SSE token accounting ----------------------------------------------------------------------------


def feed(data: bytes, api: str = "chat", split: int | None = None) -> tuple[RequestRecord, StreamAccumulator]:
    rec = RequestRecord(index=0, level=0, scheduled_ns=0, sent_ns=0)
    acc = StreamAccumulator(rec, api)
    parts = [data] if split is None else [data[i : i + split] for i in range(0, len(data), split)]
    for t, part in enumerate(parts, start=1):
        acc.feed(part, t)
    acc.finish()
    return rec, acc


def test_role_only_chunk_carries_no_token() -> None:
    rec, _ = feed(sse(chat_chunk(role=True, completion_tokens=0), chat_chunk("a", completion_tokens=1), b"[DONE]"))
    assert rec.chunk_tokens == [1]


def test_continuous_usage_counts_several_tokens_in_one_chunk() -> None:
    data = sse(chat_chunk("abc", completion_tokens=3), chat_chunk("de", completion_tokens=5), final_usage(5), b"[DONE]")
    rec, _ = feed(data)
    assert (rec.chunk_tokens, rec.output_tokens, rec.token_source) == ([3, 2], 5, "usage")


def test_final_usage_only_spreads_the_exact_total_and_says_so() -> None:
    data = sse(chat_chunk("abcd"), chat_chunk("efgh"), chat_chunk("ijkl"), final_usage(12), b"[DONE]")
    rec, _ = feed(data)
    assert (rec.chunk_tokens, rec.output_tokens, rec.token_source) == ([4, 4, 4], 12, "final_usage")


def test_without_usage_tokens_are_estimated_one_per_chunk() -> None:
    rec, _ = feed(sse(chat_chunk("a"), chat_chunk("b"), b"[DONE]"))
    assert (rec.output_tokens, rec.token_source) == (2, "estimated")


def test_events_split_across_reads_are_reassembled() -> None:
    data = sse({"choices": [{"text": "hi"}], "usage": {"completion_tokens": 1}}, b"[DONE]")
    rec, acc = feed(data, api="completions", split=7)
    assert (rec.chunk_tokens, acc.done, acc.error) == ([1], True, None)


def test_a_chunk_is_stamped_with_the_read_it_arrived_in() -> None:
    first = sse({"choices": [{"text": "a"}], "usage": {"completion_tokens": 1}})
    rest = sse({"choices": [{"text": "b"}], "usage": {"completion_tokens": 2}}, b"[DONE]")
    rec, _ = feed(first + rest, api="completions", split=len(first))
    assert rec.chunk_ns == [1, 2]


def test_non_json_data_is_malformed() -> None:
    _, acc = feed(sse(b"{oops", b"[DONE]"))
    assert acc.error == "malformed_sse"


def test_stream_without_done_is_incomplete() -> None:
    _, acc = feed(sse(chat_chunk("a")))
    assert acc.error == "incomplete"


def test_error_event_in_the_stream_is_a_stream_error() -> None:
    _, acc = feed(sse({"error": {"message": "engine dead", "code": 500}}))
    assert (acc.error, "engine dead" in (acc.error_detail or "")) == ("stream_error", True)


def test_keepalive_comments_are_ignored() -> None:
    rec, acc = feed(b": ping\n\n" + sse(chat_chunk("a"), b"[DONE]"))
    assert (rec.chunk_tokens, acc.error) == ([1], None)
