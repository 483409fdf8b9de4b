"""The load generator: asyncio + aiohttp, closed loop (concurrency) or open loop (arrival rate).

Measurement choices, and why:

- ``time.perf_counter_ns()`` is read as soon as a read of the response body returns, before the
  bytes are parsed, so parsing cost never shows up as latency.
- The request body is serialised before the send time is stamped: a 128K-token prompt takes
  milliseconds to encode, which is client time, not server time.
- The connection pool is sized to the load (closed loop: the concurrency; open loop: no limit),
  so requests never queue silently in the client. Whatever delay the client adds anyway is
  measured as schedule delay (due -> sent) and reported.
- Reads take whatever bytes are there (``iter_any``); the read buffer is 4 MiB and there is no
  line-length limit, so 128K-token contexts and huge events do not trip the client.
- Every request has a timeout; every level is bounded by a request count, a duration or both;
  failures are recorded by type and never stop the run.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .records import RequestRecord
from .sse import StreamAccumulator
from .workload import LevelSpec, Prompt, synthetic_prompt

_READ_BUFSIZE = 4 * 1024 * 1024
_ERROR_BODY_LIMIT = 2048


@dataclass(frozen=True, kw_only=True)
class Target:
    """Where and how to send requests."""

    url: str
    """Base URL of the server, e.g. ``http://vllm.models.svc:8000`` (``/v1/...`` is appended)."""
    model: str
    """Model name sent in every request."""
    api: str = "completions"
    """``completions`` (default, ``/v1/completions``) or ``chat`` (``/v1/chat/completions``)."""
    timeout_s: float = 600.0
    """Whole-request timeout in seconds (default 600); a request past it counts as a ``timeout`` error."""
    ignore_eos: bool = True
    """Send vLLM's ``ignore_eos`` so every request generates exactly max_tokens (default True)."""
    api_key: str | None = None
    """Bearer token for servers that want one (default None: no Authorization header)."""

    @property
    def endpoint(self) -> str:
        path = "/v1/chat/completions" if self.api == "chat" else "/v1/completions"
        return self.url.rstrip("/") + path


@dataclass
class RunState:
    """Everything measured so far; survives Ctrl-C so partial results can be written."""

    origin_ns: int = field(default_factory=time.perf_counter_ns)
    records: list[RequestRecord] = field(default_factory=list)
    levels_started: int = 0
    cpu_start_s: float = field(default_factory=time.process_time)

    def of_level(self, level: int) -> list[RequestRecord]:
        return [r for r in self.records if r.level == level and r.done_ns]


OnDone = Callable[[RequestRecord], None]


def stream_request(target: Target, max_tokens: int) -> dict[str, Any]:
    """The fields every request body shares: streaming with per-chunk usage (vLLM continuous usage
    stats), greedy sampling, and ``ignore_eos`` when the target asks for exact lengths."""
    body: dict[str, Any] = {
        "model": target.model,
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True, "continuous_usage_stats": True},
        "temperature": 0.0,
    }
    if target.ignore_eos:
        body["ignore_eos"] = True
    return body


def build_body(target: Target, prompt: str, max_tokens: int) -> bytes:
    """The JSON request body of one prompt (see :func:`stream_request`)."""
    body = stream_request(target, max_tokens)
    if target.api == "chat":
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    return json.dumps(body).encode()


async def send_request(
    session: aiohttp.ClientSession,
    target: Target,
    body: bytes,
    record: RequestRecord,
    *,
    content_types: bool = False,
    accumulator: Callable[[RequestRecord, str], StreamAccumulator] = StreamAccumulator,
) -> RequestRecord:
    """Send one streaming request and fill ``record``; never raises for a server or network failure.

    ``content_types``: a 2xx answer that is not ``text/event-stream`` ends as ``not_streaming``
    (the preflight's check; under load the body decides). ``accumulator``: the stream parser
    (a chat session's keeps the answer's text too).
    """
    acc = accumulator(record, target.api)
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if target.api_key:
        headers["Authorization"] = f"Bearer {target.api_key}"
    timeout = aiohttp.ClientTimeout(total=target.timeout_s)
    # Provisional: replaced by the moment the request goes on the wire (see _on_body_sent); kept
    # when the request never got that far (no connection).
    record.sent_ns = time.perf_counter_ns()
    wire = _OnWire(record)
    try:
        async with session.post(
            target.endpoint, data=body, headers=headers, timeout=timeout, trace_request_ctx=wire
        ) as resp:
            record.status = resp.status
            if resp.status >= 400:
                text = (await resp.content.read(_ERROR_BODY_LIMIT)).decode("utf-8", "replace")
                record.error = "http_5xx" if resp.status >= 500 else "http_4xx"
                record.error_detail = f"HTTP {resp.status}: {text[:300]}"
                return record
            if content_types and "text/event-stream" not in resp.headers.get("Content-Type", ""):
                record.error = "not_streaming"
                record.error_detail = f"Content-Type {resp.headers.get('Content-Type', 'missing')!r}"
                return record
            async for data in resp.content.iter_any():
                acc.feed(data, time.perf_counter_ns())
                if acc.done or acc.error:
                    break
            acc.finish()
            record.error, record.error_detail = acc.error, acc.error_detail
    except TimeoutError:
        record.error, record.error_detail = "timeout", f"no complete response within {target.timeout_s:g} s"
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
        record.error, record.error_detail = "disconnect", str(exc)[:300] or type(exc).__name__
    except aiohttp.ClientError as exc:
        record.error, record.error_detail = "connection", str(exc)[:300] or type(exc).__name__
    except OSError as exc:
        record.error, record.error_detail = "connection", str(exc)[:300]
    except asyncio.CancelledError:
        # Ctrl-C: a request cut short by the client measures nothing; it stays out of the results.
        record.error = "cancelled"
        raise
    finally:
        if record.error != "cancelled":
            record.done_ns = time.perf_counter_ns()
    return record


class _Requests:
    """Hands out the next request (prompt text, max_tokens) of a level, deterministically from a seed."""

    def __init__(self, spec: LevelSpec, prompts: tuple[Prompt, ...] | None, seed: int, level: int) -> None:
        self._spec = spec
        self._prompts = prompts
        self._rng = random.Random(f"{seed}:{level}")
        self._level = level
        self.issued = 0

    def exhausted(self) -> bool:
        return self._spec.requests is not None and self.issued >= self._spec.requests + self._spec.warmup

    def is_warmup(self, issued_index: int) -> bool:
        return issued_index < self._spec.warmup

    def next(self) -> tuple[str, int, int | None, bool]:
        """(prompt, max_tokens, requested prompt tokens or None for dataset prompts, warm-up?)."""
        i = self.issued
        self.issued += 1
        out = self._spec.output.draw(self._rng)
        warm = self.is_warmup(i)
        if self._prompts:
            p = self._prompts[i % len(self._prompts)]
            text = p.text
            if i >= len(self._prompts):
                # A dataset used more than once: make the repeat unique at its end, so the
                # server's prefix cache does not answer a prompt it has already seen.
                text = f"{text}\n(request {i // len(self._prompts)}.{self._level}.{i})"
            return text, (p.output_tokens or out), None, warm
        n = self._spec.prompt.draw(self._rng)
        return synthetic_prompt(n, self._rng), out, n, warm


class _OnWire:
    """Per-request state for the tracing hook: stamp ``sent_ns`` once, at the first body write."""

    __slots__ = ("record", "stamped")

    def __init__(self, record: RequestRecord) -> None:
        self.record = record
        self.stamped = False


async def _on_body_sent(session: aiohttp.ClientSession, ctx: Any, params: aiohttp.TraceRequestChunkSentParams) -> None:
    # aiohttp calls this just before it writes the first body chunk (headers go in the same
    # write): the request is on the wire now. Building the request, waiting for a pooled
    # connection or connecting happened before, and count as client delay (schedule delay), not
    # as server latency - otherwise a burst of 128 sends inflates TTFT by the client's own work.
    wire = ctx.trace_request_ctx
    if isinstance(wire, _OnWire) and not wire.stamped:
        wire.stamped = True
        wire.record.sent_ns = time.perf_counter_ns()


def _connector(limit: int) -> aiohttp.TCPConnector:
    # limit=0 is "no limit" in aiohttp; limit_per_host=0 likewise (its default cap is 100 in total).
    return aiohttp.TCPConnector(limit=limit, limit_per_host=0, force_close=False, enable_cleanup_closed=True)


def _session(limit: int) -> aiohttp.ClientSession:
    trace = aiohttp.TraceConfig()
    trace.on_request_chunk_sent.append(_on_body_sent)
    return aiohttp.ClientSession(
        connector=_connector(limit),
        trace_configs=[trace],
        read_bufsize=_READ_BUFSIZE,
        max_line_size=_READ_BUFSIZE,
        max_field_size=_READ_BUFSIZE,
        auto_decompress=False,
    )


async def run_level(
    target: Target,
    spec: LevelSpec,
    *,
    level: int,
    state: RunState,
    prompts: tuple[Prompt, ...] | None = None,
    seed: int = 0,
    on_done: OnDone | None = None,
) -> list[RequestRecord]:
    """Run one load level to its bounds and return its records (also appended to ``state``)."""
    state.levels_started = level + 1
    requests = _Requests(spec, prompts, seed, level)
    with collector_out_of_the_way():
        if spec.concurrency is not None:
            await _closed_loop(target, spec, level, state, requests, on_done)
        else:
            await _open_loop(target, spec, level, state, requests, seed, on_done)
    return state.of_level(level)


@contextmanager
def collector_out_of_the_way() -> Iterator[None]:
    """Around one level's measurement: collect now, and keep the survivors out of the collector's sight.

    A full garbage collection walks every object the run has made so far (records, chunk lists):
    tens of milliseconds, during which no chunk is stamped and no arrival is sent. Collecting once
    before the level, outside the measurement, and freezing what survives keeps that out of it.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def run_levels(
    target: Target,
    levels: tuple[LevelSpec, ...],
    *,
    state: RunState,
    prompts: tuple[Prompt, ...] | None = None,
    seed: int = 0,
    on_done: OnDone | None = None,
    on_level: Callable[[LevelSpec], None] | None = None,
    on_level_done: Callable[[int], None] | None = None,
    before_level: Callable[[int], Awaitable[None]] | None = None,
) -> None:
    """Run every level in order; records accumulate in ``state`` (read it even after Ctrl-C).

    ``before_level(i)`` is awaited before level ``i`` starts (a start barrier across harness
    processes); ``on_level_done(i)`` is called when it has finished (results are written then).
    """

    async def one(i: int, spec: LevelSpec) -> None:
        await run_level(target, spec, level=i, state=state, prompts=prompts, seed=seed, on_done=on_done)

    await each_level(levels, one, on_level=on_level, on_level_done=on_level_done, before_level=before_level)


async def each_level(
    levels: tuple[LevelSpec, ...],
    run_one: Callable[[int, LevelSpec], Awaitable[None]],
    *,
    on_level: Callable[[LevelSpec], None] | None = None,
    on_level_done: Callable[[int], None] | None = None,
    before_level: Callable[[int], Awaitable[None]] | None = None,
) -> None:
    """The level loop of every load mode: barrier, announce, ``run_one(i, spec)``, done."""
    for i, spec in enumerate(levels):
        if before_level:
            # Collect before waiting at the barrier, not after: a full collection takes tens of
            # milliseconds, a different amount in every process, and would shift each harness's
            # start (and an open loop's whole schedule) by that much. Frozen survivors make
            # the level's own collection, after the barrier, nearly free.
            gc.collect()
            gc.freeze()
            await before_level(i)
        if on_level:
            on_level(spec)
        await run_one(i, spec)
        if on_level_done:
            on_level_done(i)


async def _closed_loop(
    target: Target, spec: LevelSpec, level: int, state: RunState, requests: _Requests, on_done: OnDone | None
) -> None:
    assert spec.concurrency is not None
    deadline = time.perf_counter_ns() + int(spec.duration_s * 1e9) if spec.duration_s is not None else None

    def more() -> bool:
        return not requests.exhausted() and (deadline is None or time.perf_counter_ns() < deadline)

    async def worker(
        session: aiohttp.ClientSession, ready: tuple[str, int, int | None, bool] | None, start_s: float
    ) -> None:
        if start_s > 0 and ready is not None:
            # A ramp: this worker's first request waits its turn. Rounds keep the spacing, since
            # requests of one level take about equally long.
            await _wait_until(loop, ramp_origin + start_s)
        while ready is not None:
            prompt, max_tokens, asked, warm = ready
            body = build_body(target, prompt, max_tokens)
            # The worker is free and the request ready: that is when it is due.
            due = time.perf_counter_ns()
            record = RequestRecord(
                index=len(state.records),
                level=level,
                scheduled_ns=due,
                sent_ns=due,
                requested_prompt_tokens=asked,
                requested_output_tokens=max_tokens,
                warmup=warm,
            )
            state.records.append(record)
            sending = asyncio.ensure_future(send_request(session, target, body, record))
            # Draw the next prompt while this one is in flight, so that a long synthetic prompt
            # does not delay the next send (it is reserved now; unused if the duration runs out).
            ready = requests.next() if more() else None
            await sending
            if on_done:
                on_done(record)
            if ready is not None and not (deadline is None or time.perf_counter_ns() < deadline):
                ready = None

    loop = asyncio.get_running_loop()
    step = spec.ramp_s / spec.concurrency
    async with _session(spec.concurrency) as session:
        await warm_connections(session, target, spec.concurrency)
        # Every worker's first request is drawn before any worker reserves its second: otherwise
        # with fewer than 2 x concurrency requests the first workers would reserve them all and
        # the level would run at half its concurrency.
        firsts = [requests.next() if more() else None for _ in range(spec.concurrency)]
        ramp_origin = loop.time()
        await asyncio.gather(*(worker(session, first, i * step) for i, first in enumerate(firsts)))


def arrival_offsets_s(spec: LevelSpec, seed: int, level: int) -> list[float]:
    """Arrival times (seconds from the level's start) within the level's bounds."""
    assert spec.rate is not None
    rng = random.Random(f"arrivals:{seed}:{level}")
    limit = spec.requests + spec.warmup if spec.requests is not None else 10**9
    horizon = spec.duration_s if spec.duration_s is not None else float("inf")
    offsets: list[float] = []
    t = 0.0
    while len(offsets) < limit:
        if spec.arrival == "constant":
            t = len(offsets) / spec.rate
        elif spec.arrival == "gamma":
            # Shape k = burstiness, mean 1/rate: k < 1 is burstier than Poisson, k > 1 smoother.
            t += rng.gammavariate(spec.burstiness, 1.0 / (spec.rate * spec.burstiness))
        else:
            t += rng.expovariate(spec.rate)
        if t >= horizon:
            break
        offsets.append(t)
    return offsets


async def warm_connections(session: aiohttp.ClientSession, target: Target, n: int) -> int:
    """Open ``n`` keep-alive connections before a closed-loop level, with ``GET /v1/models``.

    Without this the first round of a level pays for TCP and HTTP connection set-up on both
    sides - at concurrency 128, 15-25 ms of TTFT that no later round sees. Failures are ignored:
    a server without /v1/models still leaves its connections open. Returns the 2xx answers.
    """
    url = target.url.rstrip("/") + "/v1/models"
    headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else None
    timeout = aiohttp.ClientTimeout(total=min(target.timeout_s, 30.0))

    async def one() -> bool:
        try:
            async with session.get(url, headers=headers, timeout=timeout) as resp:
                await resp.read()
                return resp.status < 300
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False

    return sum(await asyncio.gather(*(one() for _ in range(n))))


_SPIN_S = 0.001


async def _wait_until(loop: asyncio.AbstractEventLoop, due: float) -> None:
    """Wake at ``due`` (loop time) rather than up to a millisecond after it.

    asyncio's epoll timeout is whole milliseconds rounded up, so a plain sleep wakes 0-1 ms
    late. Sleep until 1 ms before, then yield to the loop (which keeps serving responses) until
    due: at most 1 ms of polling per arrival, only in the open loop.
    """
    if due - loop.time() > _SPIN_S:
        await asyncio.sleep(due - loop.time() - _SPIN_S)
    while loop.time() < due:
        await asyncio.sleep(0)


async def _open_loop(
    target: Target,
    spec: LevelSpec,
    level: int,
    state: RunState,
    requests: _Requests,
    seed: int,
    on_done: OnDone | None,
) -> None:
    offsets = list(spec.trace_offsets_s) if spec.trace_offsets_s else arrival_offsets_s(spec, seed, level)
    loop = asyncio.get_running_loop()
    start_ns = time.perf_counter_ns()
    start_loop = loop.time()
    tasks: set[asyncio.Task[None]] = set()

    async def one(session: aiohttp.ClientSession, record: RequestRecord, body: bytes) -> None:
        await send_request(session, target, body, record)
        if on_done:
            on_done(record)

    async with _session(0) as session:
        for offset in offsets:
            prompt, max_tokens, asked, warm = requests.next()
            body = build_body(target, prompt, max_tokens)
            await _wait_until(loop, start_loop + offset)
            record = RequestRecord(
                index=len(state.records),
                level=level,
                scheduled_ns=start_ns + int(offset * 1e9),
                sent_ns=0,
                requested_prompt_tokens=asked,
                requested_output_tokens=max_tokens,
                warmup=warm,
            )
            state.records.append(record)
            # Arrivals do not wait for earlier responses: that is what makes the loop open.
            task = asyncio.create_task(one(session, record, body))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
