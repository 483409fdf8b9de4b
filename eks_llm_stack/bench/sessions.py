"""Multi-turn chat sessions with think time: virtual users holding a conversation with the model.

A level of a session run has ``concurrency`` virtual users. Each takes the next session of the
set and runs its turns in order: turn k's request is the whole conversation so far - every
earlier user message and the model's *actual* answer to it, as streamed back - plus the k-th
user message; after an answer the user waits a think time (fixed or drawn from a seeded
distribution) before the next turn. A user whose turn fails stops that session (a person would
not carry on from an answer they never got) and takes the next one. A level ends when every
session of the set has been run, or at ``duration_s``: no turn starts after it, so sessions in
progress then count with the turns they completed.

With the chat API the conversation is sent as ``messages``; with completions as one prompt of
``User: ...`` / ``Assistant: ...`` lines ending in ``Assistant:``. Because the prompt grows by
every turn's question and answer, TTFT grows with the turn (prefill), unless the server's prefix
cache serves the earlier turns - which is what real chat traffic gets, so within a session the
prompts are left as they are; a session set reused by a later level is made unique at its
start, so one level's conversations do not warm the cache for the next.

Besides each level's usual figures, summary.json gets per turn (``turns``: TTFT, ITL, E2E and
prompt tokens by turn number) and per session (``sessions``: started, completed, turns completed,
session duration from the first request sent to the last answer, think times included).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from ..errors import ConfigError, Problem, Problems
from .harness import (
    OnDone,
    RunState,
    Target,
    _session,
    collector_out_of_the_way,
    each_level,
    send_request,
    stream_request,
    warm_connections,
)
from .metrics import distribution
from .records import RequestRecord
from .sse import StreamAccumulator, _text_of
from .workload import LengthSpec, LevelSpec, read_input, synthetic_prompt


@dataclass(frozen=True, kw_only=True)
class Turn:
    """One user message of a session and, when the dataset says, how long its answer should be."""

    user: str
    output_tokens: int | None = None


@dataclass(frozen=True, kw_only=True)
class Session:
    """One conversation: its number in the set and its user turns, in order."""

    id: int
    turns: tuple[Turn, ...]


_SESSIONS_FIX = (
    "use ShareGPT JSON: [{'conversations': [{'from': 'human', 'value': ...}, {'from': 'gpt', 'value': ...}, ...]}] "
    "(or 'messages' with 'role'/'content'); each user turn becomes one turn of a session"
)
_USER = ("human", "user")
_ASSISTANT = ("gpt", "assistant", "chatgpt", "bard", "model")


def _tokens_of(text: str) -> int:
    # Word count x 4/3 approximates tokens for English text (as load_dataset does).
    return max(1, math.ceil(len(text.split()) * 4 / 3))


def load_sessions(path: Path, *, max_turns: int | None = None, max_sessions: int | None = None) -> tuple[Session, ...]:
    """Sessions from ShareGPT JSON: every user turn of a conversation is one turn, and the length
    of the dataset's reply to it is the output length asked for.

    The replies' texts are not sent: turn k carries the answers the model really gave. Rows
    without a user turn are skipped (ShareGPT has some); ``max_turns`` cuts long conversations,
    ``max_sessions`` keeps the first sessions only.
    """
    p = Problems("sessions")
    text = read_input(path, "sessions")
    try:
        rows = json.loads(text)
    except ValueError as exc:
        raise ConfigError("sessions", [Problem(str(path), f"is not valid JSON ({exc})", _SESSIONS_FIX)]) from None
    if not isinstance(rows, list):
        raise ConfigError("sessions", [Problem(str(path), "is not a JSON list of conversations", _SESSIONS_FIX)])
    sessions: list[Session] = []
    for i, row in enumerate(rows):
        msgs = (row.get("conversations") or row.get("messages")) if isinstance(row, dict) else None
        if not isinstance(msgs, list):
            p.add(f"{path}[{i}]", "has no 'conversations' list", _SESSIONS_FIX)
            continue
        turns: list[Turn] = []
        for j, m in enumerate(msgs):
            if not isinstance(m, dict):
                continue
            who, value = m.get("from", m.get("role")), m.get("value", m.get("content"))
            if who not in _USER or not isinstance(value, str) or not value.strip():
                continue
            reply = msgs[j + 1] if j + 1 < len(msgs) and isinstance(msgs[j + 1], dict) else {}
            answer = (
                reply.get("value", reply.get("content")) if reply.get("from", reply.get("role")) in _ASSISTANT else None
            )
            turns.append(Turn(user=value, output_tokens=_tokens_of(answer) if isinstance(answer, str) else None))
        if turns:
            sessions.append(Session(id=len(sessions), turns=tuple(turns[:max_turns] if max_turns else turns)))
        if max_sessions is not None and len(sessions) >= max_sessions:
            break
    if not sessions and not p.problems:
        p.add(str(path), "holds no conversation with a user turn", _SESSIONS_FIX)
    p.raise_if_any()
    return tuple(sessions)


def synthetic_sessions(
    *, count: int, turns: int, user: LengthSpec, output: LengthSpec, seed: int = 0
) -> tuple[Session, ...]:
    """``count`` sessions of ``turns`` turns: user messages of random common words (``user``
    tokens each), answers of ``output`` tokens."""
    rng = random.Random(f"sessions:{seed}")
    return tuple(
        Session(
            id=i,
            turns=tuple(
                Turn(user=synthetic_prompt(user.draw(rng), rng), output_tokens=output.draw(rng)) for _ in range(turns)
            ),
        )
        for i in range(count)
    )


def shard_sessions(sessions: tuple[Session, ...], index: int, count: int) -> tuple[Session, ...]:
    """Harness ``index`` of ``count``'s sessions: every ``count``-th from ``index`` (disjoint parts
    that together are the whole set; session numbers are kept, so a merged run still tells them apart)."""
    return sessions[index::count]


class _AnswerAccumulator(StreamAccumulator):
    """The stream parser that also keeps the answer's text, for the next turn's conversation."""

    def __init__(self, record: RequestRecord, api: str) -> None:
        super().__init__(record, api)
        self.parts: list[str] = []

    def _chunk(self, obj: dict[str, Any], arrived_ns: int) -> None:
        super()._chunk(obj, arrived_ns)
        choices = obj.get("choices")
        if choices:
            self.parts.append(_text_of(choices[0], self._chat))

    @property
    def text(self) -> str:
        return "".join(self.parts)


class _Answer:
    """Hands send_request the accumulator of one turn and keeps it, to read the answer after."""

    def __init__(self) -> None:
        self._acc: _AnswerAccumulator | None = None

    def accumulator(self, record: RequestRecord, api: str) -> StreamAccumulator:
        self._acc = _AnswerAccumulator(record, api)
        return self._acc

    @property
    def text(self) -> str:
        return self._acc.text if self._acc is not None else ""


def turn_body(target: Target, conversation: Sequence[tuple[str, str]], user: str, max_tokens: int) -> bytes:
    """The request of one turn: the conversation so far ((user, answer) pairs) and the new message."""
    body = stream_request(target, max_tokens)
    if target.api == "chat":
        messages: list[dict[str, str]] = []
        for asked, answered in conversation:
            messages += [{"role": "user", "content": asked}, {"role": "assistant", "content": answered}]
        body["messages"] = [*messages, {"role": "user", "content": user}]
    else:
        lines = [f"User: {asked}\nAssistant:{answered}" for asked, answered in conversation]
        body["prompt"] = "\n".join([*lines, f"User: {user}\nAssistant:"])
    return json.dumps(body).encode()


async def run_session_level(
    target: Target,
    spec: LevelSpec,
    sessions: tuple[Session, ...],
    *,
    level: int,
    state: RunState,
    seed: int = 0,
    on_done: OnDone | None = None,
) -> list[RequestRecord]:
    """Run one session level (``spec.concurrency`` users, ``spec.think_time``, starts spread over
    ``spec.ramp_s``) to its bounds."""
    assert spec.concurrency is not None and spec.think_time is not None
    think = spec.think_time
    state.levels_started = level + 1
    deadline: int | None = None  # set when the users start, after the collection and the warm-up
    queue = list(sessions)
    queue.reverse()  # pop() from the end hands them out in order

    def in_time() -> bool:
        return deadline is None or time.perf_counter_ns() < deadline

    async def user(session: aiohttp.ClientSession, start_s: float) -> None:
        if start_s > 0:
            # A ramp (--ramp): user i starts its first session i x ramp / users after the first.
            await asyncio.sleep(start_s)
        while queue and in_time():
            s = queue.pop()
            rng = random.Random(f"session:{seed}:{level}:{s.id}")
            conversation: list[tuple[str, str]] = []
            for k, turn in enumerate(s.turns, start=1):
                if not in_time():
                    return
                text = turn.user
                if k == 1 and level > 0:
                    # The set again at a later level: a unique start, so the server's prefix cache
                    # does not answer this level's conversations from the previous level's.
                    text = f"(session {level}.{s.id}) {text}"
                max_tokens = turn.output_tokens or spec.output.draw(rng)
                body = turn_body(target, conversation, text, max_tokens)
                due = time.perf_counter_ns()
                record = RequestRecord(
                    index=len(state.records),
                    level=level,
                    scheduled_ns=due,
                    sent_ns=due,
                    requested_output_tokens=max_tokens,
                    session=s.id,
                    turn=k,
                    session_turns=len(s.turns),
                )
                state.records.append(record)
                answer = _Answer()
                await send_request(session, target, body, record, accumulator=answer.accumulator)
                if on_done:
                    on_done(record)
                if not record.ok:
                    break  # no answer to carry on from: the session ends here
                conversation.append((text, answer.text))
                if k < len(s.turns):
                    wait = think.draw(rng)
                    if deadline is not None and time.perf_counter_ns() + int(wait * 1e9) >= deadline:
                        return  # the next turn would start after the level's end: stop now
                    await asyncio.sleep(wait)

    with collector_out_of_the_way():
        async with _session(spec.concurrency) as session:
            await warm_connections(session, target, spec.concurrency)
            if spec.duration_s is not None:
                deadline = time.perf_counter_ns() + int(spec.duration_s * 1e9)
            step = spec.ramp_s / spec.concurrency
            await asyncio.gather(*(user(session, i * step) for i in range(spec.concurrency)))
    return state.of_level(level)


async def run_session_levels(
    target: Target,
    levels: tuple[LevelSpec, ...],
    sessions: tuple[Session, ...],
    *,
    state: RunState,
    seed: int = 0,
    on_done: OnDone | None = None,
    on_level: Callable[[LevelSpec], None] | None = None,
    on_level_done: Callable[[int], None] | None = None,
    before_level: Callable[[int], Awaitable[None]] | None = None,
) -> None:
    """Every session level in order (as :func:`~eks_llm_stack.bench.harness.run_levels`)."""

    async def one(i: int, spec: LevelSpec) -> None:
        await run_session_level(target, spec, sessions, level=i, state=state, seed=seed, on_done=on_done)

    await each_level(levels, one, on_level=on_level, on_level_done=on_level_done, before_level=before_level)


SESSION_DEFINITIONS: dict[str, dict[str, str]] = {
    "turns": {
        "unit": "per turn",
        "definition": "by turn number (1 = a session's first request): requests, completed, ttft_ms, itl_ms, "
        "e2e_ms and prompt_tokens (as the server counted them) of that turn over every session",
    },
    "sessions": {
        "unit": "per session",
        "definition": "started, completed (every turn answered), turns_completed (answered turns per session) "
        "and duration_s (a session's first request sent -> its last answer, think times included)",
    },
}


def session_figures(records: Sequence[RequestRecord]) -> dict[str, Any]:
    """Per-turn and per-session figures of one level's records ({} when it ran no sessions)."""
    records = [r for r in records if r.session is not None and not r.warmup]
    if not records:
        return {}
    by_turn: dict[int, list[RequestRecord]] = defaultdict(list)
    by_session: dict[int, list[RequestRecord]] = defaultdict(list)
    for r in records:
        by_turn[r.turn or 0].append(r)
        by_session[r.session or 0].append(r)
    turns = []
    for k in sorted(by_turn):
        rs = by_turn[k]
        ok = [r for r in rs if r.ok]
        prompt = [r.prompt_tokens for r in ok if r.prompt_tokens is not None]
        turns.append(
            {
                "turn": k,
                "requests": len(rs),
                "completed": len(ok),
                "ttft_ms": distribution([x for r in ok if (x := r.ttft_ms) is not None]),
                "itl_ms": distribution([x for r in ok if (x := r.itl_ms) is not None]),
                "e2e_ms": distribution([r.e2e_ms for r in ok]),
                "prompt_tokens_mean": statistics.fmean(prompt) if prompt else None,
            }
        )
    done = [sum(1 for r in rs if r.ok) for rs in by_session.values()]
    complete = sum(
        1 for rs in by_session.values() if all(r.ok for r in rs) and len(rs) == (rs[0].session_turns or len(rs))
    )
    durations = [(max(r.done_ns for r in rs) - min(r.sent_ns for r in rs)) / 1e9 for rs in by_session.values()]
    return {
        "turns": turns,
        "sessions": {
            "started": len(by_session),
            "completed": complete,
            "turns_completed": distribution([float(n) for n in done]),
            "duration_s": distribution(durations),
        },
    }


def session_lines(summary: dict[str, Any]) -> list[str]:
    """Console lines: per level, sessions completed, their length and duration, and TTFT by turn."""
    out = []
    for lv in summary.get("levels", []):
        s = lv.get("sessions")
        if not s:
            continue
        dur, n = s["duration_s"], s["turns_completed"]
        by_turn = ", ".join(
            f"{t['turn']}: {t['ttft_ms']['p50']:.1f}" for t in lv["turns"] if t["ttft_ms"].get("p50") is not None
        )
        out.append(
            f"sessions ({lv.get('concurrency')} users, think {lv.get('think_time_s')} s): "
            f"{s['completed']}/{s['started']} completed, turns p50 {n['p50']:g}, "
            f"duration p50 {dur['p50']:.2f} s p99 {dur['p99']:.2f} s; TTFT p50 ms by turn - {by_turn}"
        )
    return out


__all__ = [
    "SESSION_DEFINITIONS",
    "Session",
    "Turn",
    "load_sessions",
    "run_session_level",
    "run_session_levels",
    "session_figures",
    "session_lines",
    "shard_sessions",
    "synthetic_sessions",
    "turn_body",
]
