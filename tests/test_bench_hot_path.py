"""The harness's hot path: SSE parsing in one pass over any read size, every line ending SSE
allows, and the closed loop's optional ramp of first requests (reported, never hidden)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from eks_llm_stack.bench.harness import RunState, Target, run_level
from eks_llm_stack.bench.progress import summary_table
from eks_llm_stack.bench.records import RequestRecord
from eks_llm_stack.bench.simulator import SimulatorConfig, running
from eks_llm_stack.bench.sse import StreamAccumulator
from eks_llm_stack.bench.workload import LengthSpec, LevelSpec
from eks_llm_stack.cli import main
from tests.test_bench_robustness import simulator

MODEL = "simulated-model"


def _event(n: int) -> bytes:
    return json.dumps({"choices": [{"text": " tok"}], "usage": {"completion_tokens": n}}).encode()


def _stream(sep: bytes, n: int = 5) -> bytes:
    return b"".join(b"data: " + _event(i) + sep for i in range(1, n + 1)) + b"data: [DONE]" + sep


def _parse(data: bytes, split: int) -> tuple[RequestRecord, StreamAccumulator]:
    rec = RequestRecord(index=0, level=0, scheduled_ns=0, sent_ns=0)
    acc = StreamAccumulator(rec, "completions")
    for t, i in enumerate(range(0, len(data), split), start=1):
        acc.feed(data[i : i + split], t)
    acc.finish()
    return rec, acc


@pytest.mark.parametrize("sep", [b"\n\n", b"\r\n\r\n", b"\r\r", b"\r\n\n"], ids=["lf", "crlf", "cr", "mixed"])
@pytest.mark.parametrize("split", [1, 2, 3, 7, 10_000])
def test_every_sse_line_ending_split_anywhere_gives_the_same_tokens(sep: bytes, split: int) -> None:
    rec, acc = _parse(_stream(sep), split)
    assert (rec.chunk_tokens, acc.done, acc.error) == ([1, 1, 1, 1, 1], True, None)


def test_a_read_of_thousands_of_events_is_parsed_whole_and_stamped_once() -> None:
    data = _stream(b"\n\n", n=5000)
    rec, acc = _parse(data, len(data))
    assert (len(rec.chunk_tokens), rec.output_tokens, acc.done, acc.error) == (5000, 5000, True, None)
    assert set(rec.chunk_ns) == {1}


def test_a_stream_cut_inside_an_event_is_still_malformed() -> None:
    _rec, acc = _parse(_stream(b"\n\n")[:-5], 4)
    assert acc.error == "malformed_sse"
    assert "stream ended inside an event" in (acc.error_detail or "")


def test_events_after_done_are_ignored() -> None:
    rec, acc = _parse(_stream(b"\n\n", n=2) + b"data: " + _event(3) + b"\n\n", 1000)
    assert (rec.chunk_tokens, acc.done) == ([1, 1], True)


def _run(spec: LevelSpec, ttft_ms: float = 5) -> list[RequestRecord]:
    async def go() -> list[RequestRecord]:
        async with running(SimulatorConfig(ttft_ms=ttft_ms, itl_ms=1)) as (_, url):
            return await run_level(Target(url=url, model=MODEL, timeout_s=10), spec, level=0, state=RunState())

    return asyncio.run(go())


def test_ramp_spaces_the_first_requests_and_every_request_counts() -> None:
    # Requests last 300+ ms, longer than the 0.2 s ramp: the first four sends are the four
    # workers' first requests, 50 ms apart.
    spec = LevelSpec(concurrency=4, requests=8, ramp_s=0.2, output=LengthSpec(values=(4,)))
    records = sorted(_run(spec, ttft_ms=300), key=lambda r: r.scheduled_ns)
    firsts = records[:4]
    # Offsets from the first send, due at 0, 50, 100 and 150 ms. All workers share one event loop,
    # so a stall of the process delays whichever send is due and shortens the gap after it: bound
    # each offset (never early, save for a late first send; loose above), not each gap.
    offsets_ms = [(r.scheduled_ns - firsts[0].scheduled_ns) / 1e6 for r in firsts]
    assert all(i * 50 - 25 <= off <= i * 50 + 150 for i, off in enumerate(offsets_ms)), offsets_ms
    assert (records[4].scheduled_ns - records[0].scheduled_ns) / 1e6 >= 300
    assert len(records) == 8 and all(r.error is None for r in records)
    assert spec.load()["ramp_s"] == 0.2


def test_without_ramp_the_first_requests_leave_together() -> None:
    records = sorted(
        _run(LevelSpec(concurrency=4, requests=4, output=LengthSpec(values=(4,)))), key=lambda r: r.scheduled_ns
    )
    assert (records[-1].scheduled_ns - records[0].scheduled_ns) / 1e6 < 50
    assert "ramp_s" not in LevelSpec(concurrency=4).load()


def test_the_ramp_is_in_summary_json_and_the_console(tmp_path: Path) -> None:
    with simulator(ttft_ms=2, itl_ms=1) as (_, url):
        argv = ["bench", "run", "--url", url, "--model", MODEL, "--concurrency", "2", "--requests", "4",
                "--output-tokens", "4", "--ramp", "0.1", "--out", str(tmp_path), "--no-plots", "--no-progress"]  # fmt: skip
        assert main(argv) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["levels"][0]["ramp_s"] == 0.1
    table = summary_table(summary)
    assert "c=2 ramp 0.1s" in [str(c) for c in table.columns[0].cells]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--concurrency", "4", "--ramp", "-1"], "--ramp: must be between 0 and 3600 seconds"),
        (["--rate", "5", "--duration", "1", "--ramp", "2"], "--ramp: only applies to a closed loop"),
    ],
)
def test_a_bad_ramp_is_refused_with_the_fix(extra: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "run", "--url", "http://127.0.0.1:9", "--model", "m", *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "--ramp 1.5" in err or "drop --ramp" in err


def test_the_json_fallback_reads_streams_exactly_as_orjson_does(monkeypatch: pytest.MonkeyPatch) -> None:
    import eks_llm_stack.bench.sse as sse

    data = _stream(b"\n\n") + b"data: {oops\n\n"
    fast = _parse(data, 9)
    assert sse._loads is not json.loads  # orjson is pinned in requirements.txt
    monkeypatch.setattr(sse, "_loads", json.loads)
    slow = _parse(data, 9)
    assert (fast[0].chunk_tokens, fast[0].chunk_ns, fast[1].done) == (
        slow[0].chunk_tokens,
        slow[0].chunk_ns,
        slow[1].done,
    )
    monkeypatch.setattr(sse, "_loads", json.loads)
    _, acc = _parse(b"data: {oops\n\n", 100)
    assert (acc.error, "data is not JSON" in (acc.error_detail or "")) == ("malformed_sse", True)
