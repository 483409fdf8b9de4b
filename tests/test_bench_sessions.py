"""Multi-turn chat sessions with think time, against the simulator over real HTTP.

A recording proxy sits between the harness and the simulator: it keeps every request body and
the answer text it streamed back, so the tests can check that turn k's request carries turn
k-1's actual answer. The simulator is given a prefill cost per prompt token, as a real server
has, so TTFT must grow with the turn.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from eks_llm_stack.bench.harness import RunState, Target
from eks_llm_stack.bench.merge import merge_runs
from eks_llm_stack.bench.records import RequestRecord
from eks_llm_stack.bench.sessions import (
    load_sessions,
    run_session_level,
    session_figures,
    shard_sessions,
    synthetic_sessions,
)
from eks_llm_stack.bench.simulator import SimulatorConfig, running
from eks_llm_stack.bench.workload import LengthSpec, LevelSpec, ThinkTime
from eks_llm_stack.cli import build_parser, main
from eks_llm_stack.cli.bench import plan_from_args
from eks_llm_stack.errors import ConfigError, Problems
from tests.test_bench_robustness import MODEL, simulator

#: The simulator's prefill: 1 ms per prompt token; turn prompts grow by ~30 tokens a turn.
PREFILL_MS_PER_1K = 1000.0


def _answer_of(sse: bytes, chat: bool) -> str:
    parts = []
    for block in sse.decode().split("\n\n"):
        if not block.startswith("data: ") or block == "data: [DONE]":
            continue
        choices = json.loads(block[6:]).get("choices") or []
        if choices:
            parts.append(choices[0]["delta"].get("content", "") if chat else choices[0]["text"])
    return "".join(parts)


async def _proxy(upstream: str, seen: list[dict[str, Any]]) -> tuple[web.AppRunner, str]:
    client = aiohttp.ClientSession()

    async def generate(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        chat = request.path.endswith("/chat/completions")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        got = bytearray()
        async with client.post(upstream + request.path, json=body) as up:
            async for data in up.content.iter_any():
                got += data
                await resp.write(data)
        await resp.write_eof()
        seen.append({"body": body, "answer": _answer_of(bytes(got), chat)})
        return resp

    async def models(request: web.Request) -> web.Response:
        async with client.get(upstream + "/v1/models") as up:
            return web.json_response(await up.json())

    app = web.Application()
    app.add_routes(
        [
            web.post("/v1/chat/completions", generate),
            web.post("/v1/completions", generate),
            web.get("/v1/models", models),
        ]
    )
    app.on_cleanup.append(lambda _: client.close())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def _run(
    api: str, *, sessions: int = 4, turns: int = 4, users: int = 2, think: float = 0.05, **spec: Any
) -> tuple[list[RequestRecord], list[dict[str, Any]]]:
    sset = synthetic_sessions(
        count=sessions,
        turns=turns,
        user=LengthSpec(values=(20,)),
        output=LengthSpec(kind="uniform", values=(3, 12)),
        seed=1,
    )
    level = LevelSpec(concurrency=users, requests=None, think_time=ThinkTime(values=(think,)), **spec)

    async def go() -> tuple[list[RequestRecord], list[dict[str, Any]]]:
        seen: list[dict[str, Any]] = []
        async with running(SimulatorConfig(ttft_ms=5, itl_ms=1, prefill_ms_per_1k_tokens=PREFILL_MS_PER_1K)) as (
            _,
            url,
        ):
            runner, proxy = await _proxy(url, seen)
            try:
                state = RunState()
                records = await run_session_level(
                    Target(url=proxy, model=MODEL, api=api, timeout_s=20), level, sset, level=0, state=state
                )
            finally:
                await runner.cleanup()
        return records, seen

    return asyncio.run(go())


def test_each_chat_turn_carries_the_whole_conversation_with_the_actual_answers() -> None:
    records, seen = _run("chat")
    assert len(records) == len(seen) == 16 and all(r.ok for r in records)
    by_session: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for x in seen:
        by_session[x["body"]["messages"][0]["content"]].append(x)
    assert len(by_session) == 4
    for turns in by_session.values():
        turns.sort(key=lambda x: len(x["body"]["messages"]))
        assert [len(x["body"]["messages"]) for x in turns] == [1, 3, 5, 7]
        for prev, this in itertools.pairwise(turns):
            msgs = this["body"]["messages"]
            # Turn k = turn k-1's messages + the answer the server actually streamed + the next message.
            assert msgs[:-2] == prev["body"]["messages"]
            assert msgs[-2] == {"role": "assistant", "content": prev["answer"]}
            assert prev["answer"].strip() and msgs[-1]["role"] == "user"


def test_completions_turns_carry_the_previous_answer_in_the_prompt() -> None:
    records, seen = _run("completions", sessions=2, turns=3)
    assert len(seen) == 6 and all(r.ok for r in records)
    prompts = sorted(seen, key=lambda x: len(x["body"]["prompt"]))
    by_start: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for x in prompts:
        by_start[x["body"]["prompt"].split("\n")[0]].append(x)
    for turns in by_start.values():
        assert len(turns) == 3
        for prev, this in itertools.pairwise(turns):
            assert this["body"]["prompt"].startswith(prev["body"]["prompt"] + prev["answer"] + "\nUser: ")
            assert this["body"]["prompt"].endswith("\nAssistant:")


def test_users_think_between_turns_and_ttft_grows_with_the_turn() -> None:
    records, _ = _run("chat", think=0.05)
    by_session: dict[int | None, list[RequestRecord]] = defaultdict(list)
    for r in records:
        by_session[r.session].append(r)
    for rs in by_session.values():
        rs.sort(key=lambda r: r.turn or 0)
        assert [r.turn for r in rs] == [1, 2, 3, 4]
        for prev, this in itertools.pairwise(rs):
            # The next turn leaves no sooner than the think time after the answer (a timer may
            # fire up to a clock tick early; 2 ms allows for it).
            assert (this.sent_ns - prev.done_ns) / 1e9 >= 0.05 - 0.002
    fig = session_figures(records)
    assert fig["sessions"]["started"] == fig["sessions"]["completed"] == 4
    assert fig["sessions"]["turns_completed"]["min"] == 4
    # Session duration includes three think times.
    assert fig["sessions"]["duration_s"]["min"] >= 3 * 0.05
    turns = fig["turns"]
    prompt = [t["prompt_tokens_mean"] for t in turns]
    ttft = [t["ttft_ms"]["p50"] for t in turns]
    assert prompt == sorted(prompt) and len(set(prompt)) == 4
    # ~30 more prompt tokens a turn, 1 ms of prefill each: TTFT up by ~30 ms a turn. Lower bounds
    # are tight (no answer before its prefill, the simulator waking at most 2 ms early); machine
    # load only adds, so the growth from the first turn to the last is bounded loosely (half of it).
    for r in records:
        assert r.ttft_ms is not None and r.prompt_tokens is not None
        assert r.ttft_ms >= 5.0 + r.prompt_tokens * PREFILL_MS_PER_1K / 1000 - 2.0
    assert ttft[-1] - ttft[0] > 0.5 * (prompt[-1] - prompt[0]) * PREFILL_MS_PER_1K / 1000, ttft


def test_a_failed_turn_ends_its_session() -> None:
    async def go() -> list[RequestRecord]:
        async with running(SimulatorConfig(ttft_ms=1, itl_ms=0, error_rate=1.0)) as (_, url):
            sset = synthetic_sessions(count=3, turns=4, user=LengthSpec(values=(5,)), output=LengthSpec(values=(2,)))
            spec = LevelSpec(concurrency=2, requests=None, think_time=ThinkTime())
            return await run_session_level(
                Target(url=url, model=MODEL, api="chat"), spec, sset, level=0, state=RunState()
            )

    records = asyncio.run(go())
    assert len(records) == 3 and {r.turn for r in records} == {1}
    fig = session_figures(records)
    assert fig["sessions"]["completed"] == 0 and fig["sessions"]["turns_completed"]["max"] == 0


def test_no_turn_starts_after_the_duration() -> None:
    records, _ = _run("chat", sessions=4, turns=4, think=0.3, duration_s=0.2)
    first = min(r.sent_ns for r in records)
    assert all(r.sent_ns - first < 0.25e9 for r in records)
    fig = session_figures(records)
    assert fig["sessions"]["completed"] == 0 and fig["sessions"]["turns_completed"]["max"] == 1


def test_think_times_parse_draw_seeded_and_bad_ones_are_named() -> None:
    p = Problems("t")
    exp = ThinkTime.parse("exp:2", "--think-time", p)
    assert exp is not None and exp.describe() == "exp:2" and exp.mean_s == 2.0
    draws = [exp.draw(random.Random(7)) for _ in range(2)]
    assert draws[0] == draws[1] > 0
    uni = ThinkTime.parse("uniform:1:3", "--think-time", p)
    assert uni is not None and all(1 <= uni.draw(random.Random(i)) <= 3 for i in range(20))
    assert ThinkTime.parse("1.5", "--think-time", p) == ThinkTime(values=(1.5,))
    assert not p.problems
    for bad in ("soon", "uniform:3:1", "exp:-1", "normal:1"):
        q = Problems("t")
        assert ThinkTime.parse(bad, "--think-time", q) is None
        text = str(q.problems[0])
        assert "--think-time" in text and "exp:MEAN" in text and bad in text


def test_sharegpt_conversations_become_sessions(tmp_path: Path) -> None:
    data = [
        {
            "conversations": [
                {"from": "human", "value": "first question"},
                {"from": "gpt", "value": "one two three four five six"},
                {"from": "human", "value": "second question"},
                {"from": "gpt", "value": "short"},
                {"from": "human", "value": "third"},
            ]
        },
        {"conversations": [{"from": "gpt", "value": "no human turn"}]},
        {"messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi there"}]},
    ]
    path = tmp_path / "chats.json"
    path.write_text(json.dumps(data))
    sessions = load_sessions(path)
    assert [len(s.turns) for s in sessions] == [3, 1] and [s.id for s in sessions] == [0, 1]
    assert [t.user for t in sessions[0].turns] == ["first question", "second question", "third"]
    assert [t.output_tokens for t in sessions[0].turns] == [8, 2, None]  # reply words x 4/3
    assert [len(s.turns) for s in load_sessions(path, max_turns=2, max_sessions=1)] == [2]
    path.write_text('[{"nope": 1}]')
    with pytest.raises(ConfigError) as err:
        load_sessions(path)
    assert f"{path}[0]" in str(err.value) and "conversations" in str(err.value) and "ShareGPT" in str(err.value)


def _plan(*extra: str) -> dict[str, Any]:
    args = build_parser().parse_args(["bench", "run", "--url", "http://127.0.0.1:1", "--model", "m", *extra])
    return plan_from_args(args)


def test_sharded_sessions_are_disjoint_and_together_the_set() -> None:
    ids = []
    for i in range(3):
        plan = _plan("--synthetic-sessions", "7x2", "--concurrency", "3", "--shard", f"{i}/3")
        ids += [s.id for s in plan["sessions"]]
        assert plan["levels"][0].concurrency == 1 and plan["levels"][0].think_time is not None
    assert sorted(ids) == list(range(7))
    whole = synthetic_sessions(count=7, turns=2, user=LengthSpec(values=(4,)), output=LengthSpec(values=(2,)))
    assert [s.id for s in shard_sessions(whole, 1, 3)] == [1, 4]


def test_bad_session_options_are_reported_together(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "run", "--url", "http://127.0.0.1:1", "--model", "m", "--synthetic-sessions", "0x3", "--rate", "2", "--duration", "1", "--think-time", "exp:-1", "--requests", "5"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--synthetic-sessions: must be SESSIONSxTURNS" in err
    assert "sessions run with a number of chat users" in err and "--concurrency USERS" in err
    assert "--think-time: needs finite seconds >= 0" in err
    assert "--requests: does not apply to a session run" in err
    assert main(["bench", "run", "--url", "http://127.0.0.1:1", "--model", "m", "--concurrency", "1", "--think-time", "2"]) == 2  # fmt: skip
    assert "--think-time: only applies to a session run" in capsys.readouterr().err


def test_session_run_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with simulator(ttft_ms=2, itl_ms=1) as (_, url):
        for i in range(2):
            code = main(["bench", "run", "--url", url, "--model", MODEL, "--api", "chat", "--synthetic-sessions", "5x3", "--think-time", "uniform:0.01:0.02", "--concurrency", "2", "--output-tokens", "4", "--shard", f"{i}/2", "--out", str(tmp_path / f"p{i}"), "--no-progress", "--no-plots"])  # fmt: skip
            assert code == 0
    out = capsys.readouterr().err
    assert "sessions (1 users, think uniform:0.01:0.02 s): 3/3 completed" in out and "TTFT p50 ms by turn - 1:" in out
    doc = json.loads((tmp_path / "p0" / "summary.json").read_text())
    lv = doc["levels"][0]
    assert (lv["mode"], lv["think_time_s"], lv["requests"]) == ("sessions", "uniform:0.01:0.02", 9)
    assert [t["turn"] for t in lv["turns"]] == [1, 2, 3] and "sessions" in doc["definitions"]
    rows = [json.loads(x) for x in (tmp_path / "p0" / "requests.jsonl").read_text().splitlines()]
    assert {(r["session"], r["turn"]) for r in rows} == {(s, t) for s in (0, 2, 4) for t in (1, 2, 3)}
    # The per-turn plot and the report's sessions section (a run without sessions has neither).
    from eks_llm_stack.bench.plots import TURNS, build_figures
    from eks_llm_stack.bench.report import render_report

    assert TURNS in build_figures([("p0", doc)])
    assert "<h2>Chat sessions</h2>" in render_report(doc, [])
    plain = {**doc, "levels": [{k: v for k, v in lv.items() if k not in ("turns", "sessions")} for lv in doc["levels"]]}
    assert TURNS not in build_figures([("plain", plain)]) and "Chat sessions" not in render_report(plain, [])
    # The two harnesses' parts merge into the whole set: 5 sessions, every one complete.
    merged, _, _ = merge_runs([tmp_path / "p0", tmp_path / "p1"])
    m = merged["levels"][0]
    assert (m["concurrency"], m["sessions"]["started"], m["sessions"]["completed"]) == (2, 5, 5)
    assert [t["requests"] for t in m["turns"]] == [5, 5, 5]
    assert (m["mode"], m["think_time_s"]) == ("sessions", "uniform:0.01:0.02")


def test_an_sla_sweep_is_not_sharded(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "run", "--url", "http://127.0.0.1:1", "--model", "m", "--sla-sweep", "concurrency", "--sweep-range", "1:8", "--requests", "4", "--shard", "0/2"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--sla-sweep / --shard" in err and "run the sweep in one harness" in err


def test_a_ramp_spreads_the_users_first_sessions() -> None:
    # Each session lasts > 0.5 s (a think time between its two turns), so every user takes one.
    records, _ = _run("chat", sessions=4, turns=2, users=4, think=0.5, ramp_s=0.4)
    starts = sorted(r.sent_ns for r in records if r.turn == 1)
    assert len(starts) == 4
    # User i starts i x 0.1 s after the first: lower bounds only (a timer fires late, never early). Half
    # a step of slack for the first user's own send being late on a busy machine; without a ramp every
    # user would start within a few milliseconds of the first.
    assert all((t - starts[0]) / 1e9 >= i * 0.1 - 0.05 for i, t in enumerate(starts)), starts
