"""A vLLM-compatible simulator: OpenAI completions and chat, streaming, with known timings.

It is the ground truth for the harness's tests and a CPU-only stand-in for vLLM on ephemeral
CI clusters. What it mimics from vLLM's OpenAI server:

- ``POST /v1/completions`` and ``/v1/chat/completions``, streaming (SSE, ``data: [DONE]``) or not;
- ``stream_options.include_usage`` (a final chunk with ``choices: []`` and ``usage``) and
  ``stream_options.continuous_usage_stats`` (cumulative ``usage`` on every chunk);
- a role-only first chat chunk (``delta: {"role": "assistant", "content": ""}``);
- error bodies in vLLM's shape (``object: "error"``), 404 for an unknown model;
- ``GET /health``, ``GET /v1/models`` and ``GET /metrics`` with the ``vllm:*`` series the
  platform's alerts and dashboards read.

Timing model: a request waits for a slot (``max_concurrency``), then its first chunk leaves
``ttft_ms`` later and every further token ``itl_ms`` after the previous one; a chunk carrying
K tokens leaves when its last token is due. Deadlines are absolute (from admission), so sleep
overshoot does not accumulate over a long response. Every request generates exactly its
``max_tokens`` (as vLLM does with ``ignore_eos``). Prompt tokens are counted as whitespace-
separated words.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ..errors import collecting

_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
_ITL_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
_E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0)


@dataclass(frozen=True, kw_only=True)
class SimulatorConfig:
    """How the simulator behaves. Rates are probabilities per request, drawn in the order listed."""

    model: str = "simulated-model"
    """Model name it serves; requests for another model get 404 (default ``simulated-model``)."""
    ttft_ms: float = 50.0
    """Admission -> first token-carrying chunk, in ms (default 50)."""
    itl_ms: float = 10.0
    """Time between tokens, in ms (default 10)."""
    tokens_per_chunk: int = 1
    """Tokens per streamed chunk, like vLLM's stream interval or speculative decoding (default 1)."""
    prefill_ms_per_1k_tokens: float = 0.0
    """Extra time to first token per 1000 prompt tokens, like a real server's prefill: a chat
    session's later turns, with longer prompts, then answer later (default 0: TTFT is ``ttft_ms``
    whatever the prompt)."""
    max_concurrency: int | None = None
    """Requests generating at once; more wait in a queue (default None: no limit)."""
    default_max_tokens: int = 16
    """Output length when a request gives no ``max_tokens`` (default 16, the OpenAI default)."""
    error_rate: float = 0.0
    """Share of requests answered with HTTP 500 (default 0)."""
    disconnect_rate: float = 0.0
    """Share of streams cut after the first token chunk without finishing (default 0)."""
    malformed_rate: float = 0.0
    """Share of streams that send a malformed SSE event after the first token chunk (default 0)."""
    stall_rate: float = 0.0
    """Share of requests that never answer, to exercise client timeouts (default 0)."""
    seed: int | None = None
    """Seed of the fault draws (default None: not reproducible)."""
    api_key: str | None = None
    """Bearer token every request must carry; others get 401 like vLLM's ``--api-key`` (default None: open)."""
    ignore_stream: bool = False
    """Answer in one JSON body even when asked to stream, like a server without streaming (default False)."""

    def __post_init__(self) -> None:
        with collecting("SimulatorConfig") as p:
            p.check(self.ttft_ms >= 0, "ttft_ms", self.ttft_ms, "must be >= 0", "pass a time in ms, e.g. 50")
            p.check(self.itl_ms >= 0, "itl_ms", self.itl_ms, "must be >= 0", "pass a time in ms, e.g. 10")
            p.check(
                self.prefill_ms_per_1k_tokens >= 0,
                "prefill_ms_per_1k_tokens",
                self.prefill_ms_per_1k_tokens,
                "must be >= 0",
                "pass a time in ms per 1000 prompt tokens, e.g. 20, or 0 for none",
            )
            p.check(
                self.tokens_per_chunk >= 1,
                "tokens_per_chunk",
                self.tokens_per_chunk,
                "must be >= 1",
                "pass 1 for one token per chunk, or the server's stream interval",
            )
            p.check(
                self.max_concurrency is None or self.max_concurrency >= 1,
                "max_concurrency",
                self.max_concurrency,
                "must be >= 1",
                "omit it for no limit, or pass e.g. 64",
            )
            p.check(
                self.default_max_tokens >= 1,
                "default_max_tokens",
                self.default_max_tokens,
                "must be >= 1",
                "pass e.g. 16",
            )
            rates = ("error_rate", "disconnect_rate", "malformed_rate", "stall_rate")
            for name in rates:
                v = getattr(self, name)
                p.check(0.0 <= v <= 1.0, name, v, "must be a probability between 0 and 1", "pass e.g. 0.01 for 1 %")
            total = sum(getattr(self, n) for n in rates)
            p.check(
                total <= 1.0,
                "error_rate+disconnect_rate+malformed_rate+stall_rate",
                total,
                "fault rates add up to more than 1",
                "lower them so that their sum is at most 1",
            )


@dataclass
class _Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, v: float) -> None:
        self.n += 1
        self.total += v
        for i, b in enumerate(self.buckets):
            if v <= b:
                self.counts[i] += 1


@dataclass
class _Stats:
    running: int = 0
    waiting: int = 0
    prompt_tokens: int = 0
    generation_tokens: int = 0
    success: dict[str, int] = field(default_factory=lambda: {"length": 0, "abort": 0})
    ttft: _Histogram = field(default_factory=lambda: _Histogram(_TTFT_BUCKETS))
    itl: _Histogram = field(default_factory=lambda: _Histogram(_ITL_BUCKETS))
    e2e: _Histogram = field(default_factory=lambda: _Histogram(_E2E_BUCKETS))
    queue: _Histogram = field(default_factory=lambda: _Histogram(_TTFT_BUCKETS))


class _BadRequest(Exception):
    def __init__(self, status: int, message: str, kind: str) -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


class Simulator:
    """The aiohttp application plus its counters. ``app`` is served by :func:`serve` or :func:`running`."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.stats = _Stats()
        #: What the simulator actually did, per finished request: (TTFT ms, ITL ms) from the
        #: moment the request reached the handler, and that moment and the first token's write
        #: on the perf_counter clock (CLOCK_MONOTONIC: comparable between processes of one host).
        #: Served at /simulator/timings.
        self.timings: deque[tuple[float, float | None, float, float]] = deque(maxlen=100_000)
        self._rng = random.Random(config.seed)
        self._early_s = 0.0
        self._slots = asyncio.Semaphore(config.max_concurrency) if config.max_concurrency else None
        self.app = web.Application(client_max_size=64 * 1024 * 1024)  # 128K-token prompts fit
        self.app.add_routes(
            [
                web.post("/v1/completions", self._completions),
                web.post("/v1/chat/completions", self._chat),
                web.get("/health", self._health),
                web.get("/v1/models", self._models),
                web.get("/version", self._version),
                web.get("/metrics", self._metrics),
                web.get("/simulator/timings", self._timings),
            ]
        )

    # -- plain endpoints -------------------------------------------------------------------------

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _version(self, request: web.Request) -> web.Response:
        from .. import __version__

        return web.json_response({"version": f"eks-llm-stack-simulator {__version__}"})

    async def _models(self, request: web.Request) -> web.Response:
        if self.config.api_key and request.headers.get("Authorization") != f"Bearer {self.config.api_key}":
            return web.json_response({"error": "Unauthorized"}, status=401)
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {
                        "id": self.config.model,
                        "object": "model",
                        "created": int(time.time()),
                        "owned_by": "vllm",
                        "root": self.config.model,
                        "max_model_len": 131072,
                    }
                ],
            }
        )

    async def _timings(self, request: web.Request) -> web.Response:
        """The simulator's own measured timings, for checking a client against them (``?since=N``)."""
        since = int(request.query.get("since", "0"))
        rows = list(self.timings)[since:]
        return web.json_response(
            {
                "count": len(self.timings),
                "ttft_ms": [r[0] for r in rows],
                "itl_ms": [r[1] for r in rows if r[1] is not None],
                "arrived_s": [r[2] for r in rows],
                "first_token_written_s": [r[3] for r in rows],
            }
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=self.render_metrics(), content_type="text/plain", charset="utf-8")

    def render_metrics(self) -> str:
        """Prometheus text exposition of the vllm:* series, as vLLM 0.29.0 writes them.

        Names, types and labels follow the pinned release (checked against its metrics.json by
        ``eks_llm_stack.gates.metrics_contract``): prometheus_client's ``# TYPE`` line carries a
        counter's name without ``_total`` and its sample the suffix; every sample has vLLM's
        ``model_name`` and ``engine`` (engine index, "0" for one engine) labels.
        """
        s = self.stats
        m = f'model_name="{self.config.model}",engine="0"'
        cap = self.config.max_concurrency
        usage = (s.running / cap) if cap else 0.0
        lines: list[str] = []

        def gauge(name: str, help_: str, value: float) -> None:
            lines.extend([f"# HELP {name} {help_}", f"# TYPE {name} gauge", f"{name}{{{m}}} {value}"])

        def counter(name: str, help_: str, samples: list[tuple[str, float]]) -> None:
            lines.extend([f"# HELP {name} {help_}", f"# TYPE {name} counter"])
            lines.extend(f"{name}_total{{{m}{extra}}} {value}" for extra, value in samples)

        def hist(name: str, help_: str, h: _Histogram) -> None:
            samples: list[tuple[str, float]] = [
                (f'_bucket{{{m},le="{b}"}}', c) for b, c in zip(h.buckets, h.counts, strict=True)
            ]
            samples += [(f'_bucket{{{m},le="+Inf"}}', h.n), (f"_sum{{{m}}}", h.total), (f"_count{{{m}}}", h.n)]
            lines.extend([f"# HELP {name} {help_}", f"# TYPE {name} histogram"])
            lines.extend(f"{name}{suffix} {value}" for suffix, value in samples)

        gauge("vllm:num_requests_running", "Number of requests in model execution batches.", s.running)
        gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", s.waiting)
        gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", usage)
        counter("vllm:num_preemptions", "Cumulative number of preemption from the engine.", [("", 0)])
        counter("vllm:prompt_tokens", "Number of prefill tokens processed.", [("", s.prompt_tokens)])
        counter("vllm:generation_tokens", "Number of generation tokens processed.", [("", s.generation_tokens)])
        counter(
            "vllm:prefix_cache_queries",
            "Prefix cache queries, in terms of number of queried tokens.",
            [("", s.prompt_tokens)],
        )
        counter("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.", [("", 0)])
        counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            [(f',finished_reason="{r}"', n) for r, n in sorted(s.success.items())],
        )
        hist("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", s.ttft)
        hist("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", s.itl)
        hist("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", s.e2e)
        hist("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.", s.queue)
        return "\n".join(lines) + "\n"

    # -- generation -------------------------------------------------------------------------------

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=False)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=True)

    def _parse(self, body: Any, chat: bool) -> tuple[int, int, bool, bool, bool]:
        if not isinstance(body, dict):
            raise _BadRequest(400, "request body must be a JSON object", "BadRequestError")
        if body.get("model") != self.config.model:
            raise _BadRequest(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError")
        if chat:
            msgs = body.get("messages")
            if not isinstance(msgs, list) or not msgs:
                raise _BadRequest(400, "'messages' must be a non-empty list", "BadRequestError")
            text = " ".join(
                m.get("content", "") for m in msgs if isinstance(m, dict) and isinstance(m.get("content"), str)
            )
        else:
            prompt = body.get("prompt")
            if not isinstance(prompt, str):
                raise _BadRequest(400, "'prompt' must be a string", "BadRequestError")
            text = prompt
        max_tokens = body.get("max_completion_tokens" if chat and "max_completion_tokens" in body else "max_tokens")
        if max_tokens is None:
            max_tokens = self.config.default_max_tokens
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise _BadRequest(400, f"max_tokens must be at least 1, got {max_tokens!r}.", "BadRequestError")
        opts = body.get("stream_options") or {}
        stream = bool(body.get("stream", False))
        return (
            len(text.split()),
            max_tokens,
            stream,
            bool(opts.get("include_usage")),
            bool(opts.get("continuous_usage_stats")),
        )

    def _fault(self) -> str | None:
        c, x = self.config, self._rng.random()
        for name, rate in (
            ("error", c.error_rate),
            ("disconnect", c.disconnect_rate),
            ("malformed", c.malformed_rate),
            ("stall", c.stall_rate),
        ):
            if x < rate:
                return name
            x -= rate
        return None

    async def _generate(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
        arrived = time.perf_counter()
        if self.config.api_key and request.headers.get("Authorization") != f"Bearer {self.config.api_key}":
            return web.json_response({"error": "Unauthorized"}, status=401)
        try:
            try:
                body = await request.json()
            except ValueError:
                raise _BadRequest(400, "request body is not valid JSON", "BadRequestError") from None
            prompt_tokens, max_tokens, stream, include_usage, continuous = self._parse(body, chat)
            stream = stream and not self.config.ignore_stream
        except _BadRequest as exc:
            return _error(exc.status, exc.message, exc.kind)
        fault = self._fault()
        if fault == "error":
            return _error(500, "simulated internal server error", "InternalServerError")
        if fault == "stall":
            await asyncio.sleep(3600)  # the client's timeout (or disconnect) ends this first
        self.stats.waiting += 1
        try:
            if self._slots:
                await self._slots.acquire()
        finally:
            self.stats.waiting -= 1
        self.stats.running += 1
        self.stats.prompt_tokens += prompt_tokens
        try:
            return await self._respond(
                request, chat, arrived, prompt_tokens, max_tokens, stream, include_usage, continuous, fault
            )
        except ConnectionError:
            # The client went away mid-stream (it timed out or gave up): vLLM aborts such a request.
            self.stats.success["abort"] += 1
            return web.Response(status=499)
        finally:
            self.stats.running -= 1
            if self._slots:
                self._slots.release()

    async def _respond(
        self,
        request: web.Request,
        chat: bool,
        arrived: float,
        prompt_tokens: int,
        max_tokens: int,
        stream: bool,
        include_usage: bool,
        continuous: bool,
        fault: str | None,
    ) -> web.StreamResponse:
        c = self.config
        admitted = time.perf_counter()
        self.stats.queue.observe(admitted - arrived)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        created = int(time.time())
        sizes = [min(c.tokens_per_chunk, max_tokens - i) for i in range(0, max_tokens, c.tokens_per_chunk)]
        # Every deadline is from admission: prefill moves the first token and all after it.
        t0 += prompt_tokens * c.prefill_ms_per_1k_tokens / 1e6
        if not stream:
            await self._sleep_until(loop, t0 + (c.ttft_ms + (max_tokens - sizes[0]) * c.itl_ms) / 1e3)
            now = time.perf_counter()
            self._finished(arrived, admitted, max_tokens, first=now, last=now, after_first=0)
            text = " tok" * max_tokens
            choice: dict[str, Any] = (
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}
                if chat
                else {"index": 0, "text": text, "finish_reason": "length", "logprobs": None}
            )
            return web.json_response(
                {
                    "id": rid,
                    "object": "chat.completion" if chat else "text_completion",
                    "created": created,
                    "model": c.model,
                    "choices": [choice],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": max_tokens,
                        "total_tokens": prompt_tokens + max_tokens,
                    },
                }
            )

        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        obj = "chat.completion.chunk" if chat else "text_completion"
        with_usage = include_usage and continuous
        # Chunks are formatted from pre-encoded pieces rather than json.dumps'd one by one: at
        # 128 streams x 100 tokens/s that is most of the simulator's CPU.
        head = (
            f'data: {{"id":"{rid}","object":"{obj}","created":{created},"model":{json.dumps(c.model)},"choices":['
        ).encode()

        def event(choice: str, done: int | None) -> bytes:
            usage = (
                ""
                if done is None
                else f',"usage":{{"prompt_tokens":{prompt_tokens},"completion_tokens":{done},'
                f'"total_tokens":{prompt_tokens + done}}}'
            )
            return head + f"{choice}]{usage}}}\n\n".encode()

        if chat:
            role = '{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}'
            await resp.write(event(role, 0 if with_usage else None))
        done = 0
        first = last = 0.0
        for j, k in enumerate(sizes):
            await self._sleep_until(loop, t0 + (c.ttft_ms + (done + k - sizes[0]) * c.itl_ms) / 1e3)
            done += k
            finish = '"length"' if done == max_tokens else "null"
            text = " tok" * k
            piece = (
                f'{{"index":0,"delta":{{"content":"{text}"}},"logprobs":null,"finish_reason":{finish}}}'
                if chat
                else f'{{"index":0,"text":"{text}","logprobs":null,"finish_reason":{finish},"stop_reason":null}}'
            )
            await resp.write(event(piece, done if with_usage else None))
            last = time.perf_counter()
            if j == 0:
                first = last
                if fault == "disconnect":
                    self.stats.success["abort"] += 1
                    # Cut the connection mid-body: the chunked encoding never terminates.
                    if request.transport is not None:
                        request.transport.close()
                    return resp
                if fault == "malformed":
                    await resp.write(b"data: {this is not json\n\n")
        if include_usage:
            await resp.write(event("", done))  # the final usage chunk: "choices": []
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        self._finished(arrived, admitted, max_tokens, first=first, last=last, after_first=max_tokens - sizes[0])
        return resp

    async def _sleep_until(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        """Sleep until ``deadline`` (loop time), compensating the event loop's typical wake-up lateness.

        asyncio's epoll waits in whole milliseconds, rounded up, so a plain sleep wakes on average
        about half a millisecond late. The lateness still left after compensation feeds a moving
        average that the next sleep subtracts (bounded to 0..2 ms), so emission times centre on
        the configured ones instead of trailing them.
        """
        delay = deadline - loop.time() - self._early_s
        if delay > 0:
            await asyncio.sleep(delay)
            late = loop.time() - deadline
            self._early_s = min(max(self._early_s + 0.05 * late, 0.0), 0.002)

    def _finished(
        self, arrived: float, admitted: float, tokens: int, *, first: float, last: float, after_first: int
    ) -> None:
        s = self.stats
        s.generation_tokens += tokens
        s.success["length"] += 1
        s.ttft.observe(first - arrived)
        itl = (last - first) / after_first if after_first > 0 else None
        if itl is not None:
            s.itl.observe(itl)
        s.e2e.observe(time.perf_counter() - arrived)
        self.timings.append(((first - arrived) * 1e3, None if itl is None else itl * 1e3, arrived, first))


def _error(status: int, message: str, kind: str) -> web.Response:
    return web.json_response(
        {"object": "error", "message": message, "type": kind, "param": None, "code": status}, status=status
    )


@asynccontextmanager
async def running(
    config: SimulatorConfig, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[tuple[Simulator, str]]:
    """Serve a simulator for the duration of the block; yields it and its base URL (port 0 = any free port)."""
    sim = Simulator(config)
    # handler_cancellation: a client that goes away aborts its request, as in vLLM; a short
    # shutdown_timeout keeps stalled (fault-injected) handlers from holding up the exit.
    runner = web.AppRunner(
        sim.app, access_log=None, handle_signals=False, handler_cancellation=True, shutdown_timeout=1.0
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    # With port 0 the bound port is only known once the site has started.
    sockets = getattr(site._server, "sockets", None) or ()
    sock_port = sockets[0].getsockname()[1] if sockets else port
    try:
        yield sim, f"http://{host}:{sock_port}"
    finally:
        await runner.cleanup()


async def serve(config: SimulatorConfig, host: str, port: int, ready: asyncio.Event | None = None) -> None:
    """Serve until cancelled (Ctrl-C)."""
    async with running(config, host, port) as (_, url):
        print(
            f"simulating {config.model!r} at {url} (ttft {config.ttft_ms:g} ms, itl {config.itl_ms:g} ms, "
            f"{config.tokens_per_chunk} token(s)/chunk)",
            flush=True,
        )
        if ready:
            ready.set()
        await asyncio.Event().wait()
