"""The simulator speaks vLLM's OpenAI dialect: endpoints, stream shape, usage and /metrics."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp
import pytest

from eks_llm_stack.bench.simulator import SimulatorConfig, running
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.monitoring.metrics import vllm_series

MODEL = "simulated-model"


def call(config: SimulatorConfig, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, str]:
    async def go() -> tuple[int, str]:
        async with (
            running(config) as (_, url),
            aiohttp.ClientSession() as s,
            s.request(method, url + path, json=body) as resp,
        ):
            return resp.status, await resp.text()

    return asyncio.run(go())


def events(text: str) -> list[Any]:
    out = []
    for block in text.split("\n\n"):
        if block.startswith("data: "):
            payload = block[len("data: ") :]
            out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": "one two three"}], "max_tokens": 3, **extra}


FAST = SimulatorConfig(ttft_ms=1, itl_ms=0)


def test_health_answers_200() -> None:
    assert call(FAST, "GET", "/health")[0] == 200


def test_models_lists_the_served_model() -> None:
    status, text = call(FAST, "GET", "/v1/models")
    assert (status, [m["id"] for m in json.loads(text)["data"]]) == (200, [MODEL])


def test_chat_stream_starts_with_a_role_only_chunk() -> None:
    _, text = call(FAST, "POST", "/v1/chat/completions", chat(stream=True))
    assert events(text)[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}


def test_stream_ends_with_done() -> None:
    _, text = call(FAST, "POST", "/v1/completions", {"model": MODEL, "prompt": "x", "max_tokens": 2, "stream": True})
    assert events(text)[-1] == "[DONE]"


def test_include_usage_adds_a_final_usage_chunk_only() -> None:
    _, text = call(FAST, "POST", "/v1/chat/completions", chat(stream=True, stream_options={"include_usage": True}))
    evs = [e for e in events(text) if e != "[DONE]"]
    assert [("usage" in e) for e in evs] == [False, False, False, False, True]
    assert evs[-1]["choices"] == [] and evs[-1]["usage"]["completion_tokens"] == 3


def test_continuous_usage_stats_are_cumulative_on_every_chunk() -> None:
    opts = {"include_usage": True, "continuous_usage_stats": True}
    _, text = call(FAST, "POST", "/v1/chat/completions", chat(stream=True, stream_options=opts))
    counts = [e["usage"]["completion_tokens"] for e in events(text) if e != "[DONE]"]
    assert counts == [0, 1, 2, 3, 3]


def test_tokens_per_chunk_groups_tokens() -> None:
    opts = {"include_usage": True, "continuous_usage_stats": True}
    body = {"model": MODEL, "prompt": "x", "max_tokens": 5, "stream": True, "stream_options": opts}
    _, text = call(SimulatorConfig(ttft_ms=1, itl_ms=0, tokens_per_chunk=2), "POST", "/v1/completions", body)
    counts = [e["usage"]["completion_tokens"] for e in events(text) if e != "[DONE]" and e["choices"]]
    assert counts == [2, 4, 5]


def test_non_streaming_completion_reports_usage() -> None:
    _, text = call(FAST, "POST", "/v1/completions", {"model": MODEL, "prompt": "a b c d", "max_tokens": 4})
    assert json.loads(text)["usage"] == {"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8}


def test_unknown_model_is_404_in_vllm_error_shape() -> None:
    status, text = call(FAST, "POST", "/v1/completions", {"model": "nope", "prompt": "x"})
    assert (status, json.loads(text)["object"], "nope" in json.loads(text)["message"]) == (404, "error", True)


def test_bad_max_tokens_is_400() -> None:
    status, _ = call(FAST, "POST", "/v1/completions", {"model": MODEL, "prompt": "x", "max_tokens": 0})
    assert status == 400


def test_metrics_exposes_every_vllm_series_our_alerts_and_dashboards_read() -> None:
    _, text = call(FAST, "GET", "/metrics")
    served = set(re.findall(r"^(vllm:[a-z0-9_]+)[{ ]", text, re.M))
    assert vllm_series() - served == set()


def test_metrics_have_vllm_0_29_0s_names_types_and_labels() -> None:
    from eks_llm_stack.gates.metrics_contract import check_exposition

    _, text = call(FAST, "GET", "/metrics")
    assert [p.render() for p in check_exposition(text, where="simulator")] == []


def test_metrics_count_generated_tokens() -> None:
    async def go() -> str:
        async with running(FAST) as (_, url), aiohttp.ClientSession() as s:
            body = {"model": MODEL, "prompt": "x", "max_tokens": 7, "stream": True}
            async with s.post(url + "/v1/completions", json=body) as resp:
                await resp.read()
            async with s.get(url + "/metrics") as resp:
                return await resp.text()

    assert f'vllm:generation_tokens_total{{model_name="{MODEL}",engine="0"}} 7' in asyncio.run(go())


def test_bad_simulator_settings_are_reported_together() -> None:
    with pytest.raises(ConfigError, match=r"(?s)tokens_per_chunk.*must be >= 1.*error_rate.*probability"):
        SimulatorConfig(tokens_per_chunk=0, error_rate=2.0)


def test_simulator_reports_its_own_timings() -> None:
    async def go() -> dict[str, Any]:
        sim = SimulatorConfig(ttft_ms=20, itl_ms=5, tokens_per_chunk=2)
        async with running(sim) as (_, url), aiohttp.ClientSession() as s:
            body = {"model": MODEL, "prompt": "x", "max_tokens": 6, "stream": True}
            async with s.post(url + "/v1/completions", json=body) as resp:
                await resp.read()
            async with s.get(url + "/simulator/timings") as resp:
                return await resp.json()

    got = asyncio.run(go())
    # Lower bounds are tight (tokens leave on an absolute schedule from admission and the
    # simulator wakes at most 2 ms early), upper bounds loose: a loaded machine wakes it late.
    ttft, itl = got["ttft_ms"][0], got["itl_ms"][0]
    assert got["count"] == 1 and ttft >= 20.0 - 2.0
    # 6 tokens in chunks of 2: the last chunk is due 20 + 4 x 5 = 40 ms after admission.
    assert ttft + 4 * itl >= 40.0 - 2.0
    assert itl <= 2 * 5.0 and ttft < 20.0 + 50.0


def test_prefill_delays_the_first_token_by_the_prompt_length() -> None:
    async def go() -> list[float]:
        sim = SimulatorConfig(ttft_ms=5, itl_ms=0, prefill_ms_per_1k_tokens=500.0)
        async with running(sim) as (server, url), aiohttp.ClientSession() as s:
            for words in (10, 110):
                body = {"model": MODEL, "prompt": " ".join(["w"] * words), "max_tokens": 1, "stream": True}
                async with s.post(url + "/v1/completions", json=body) as resp:
                    await resp.read()
            return [t[0] for t in server.timings]

    short, long = asyncio.run(go())
    # 0.5 ms per prompt token: 5 ms more for 10 tokens, 55 ms for 110. Lower bounds tight (the
    # simulator wakes at most 2 ms early; without prefill both would be 5 ms), the difference
    # bounded loosely above (a loaded machine wakes it late, by a different amount each time).
    assert short >= 10.0 - 2.0 and long >= 60.0 - 2.0
    assert long - short < 50.0 + 30.0


def test_negative_prefill_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"(?s)prefill_ms_per_1k_tokens.*must be >= 0.*per 1000 prompt tokens"):
        SimulatorConfig(prefill_ms_per_1k_tokens=-1)
