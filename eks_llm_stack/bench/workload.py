"""What to send: load levels, prompt and output lengths, datasets and the named scenarios.

Scenarios are REFERENCE.md's test table. Synthetic prompts are random common English words, one
word per token approximately (tokenizers differ; the server's ``usage.prompt_tokens`` is what
gets recorded). Random words per request also keep a server's prefix cache from turning the
test into a cache benchmark.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, Problem, Problems

SCENARIOS = ("baseline", "saturation", "production", "dataset", "long-context")
ARRIVALS = ("poisson", "gamma", "constant")
APIS = ("completions", "chat")

_WORDS = tuple(
    (  # noqa: SIM905 - a word list reads better as prose than as 120 quoted strings
        "the of and to in is you that it he was for on are as with his they at be this have from or one had "
        "by word but not what all were we when your can said there use an each which she do how their if will "
        "up other about out many then them these so some her would make like him into time has look two more "
        "write go see number no way could people my than first water been call who oil its now find long down "
        "day did get come made may part over new sound take only little work know place year live me back "
        "give most very"
    ).split()
)


@dataclass(frozen=True, kw_only=True)
class LengthSpec:
    """A token length: fixed, or drawn from a distribution.

    Written ``N``, ``uniform:LO:HI``, ``normal:MEAN:SD`` or ``choice:A,B,C`` on the command line.
    """

    kind: str = "fixed"
    """``fixed`` (default), ``uniform``, ``normal`` or ``choice``."""
    values: tuple[int, ...] = (128,)
    """Parameters: (N,), (LO, HI), (MEAN, SD) or the choices (default (128,))."""

    def draw(self, rng: random.Random) -> int:
        v = self.values
        if self.kind == "fixed":
            return v[0]
        if self.kind == "uniform":
            return rng.randint(v[0], v[1])
        if self.kind == "normal":
            return max(1, round(rng.gauss(v[0], v[1])))
        return rng.choice(v)

    def describe(self) -> str:
        if self.kind == "fixed":
            return str(self.values[0])
        sep = "," if self.kind == "choice" else ":"
        return f"{self.kind}:{sep.join(str(x) for x in self.values)}"

    @classmethod
    def parse(cls, text: str, field: str, problems: Problems) -> LengthSpec | None:
        """Parse a command-line length; a bad one is recorded on ``problems`` (field, value, fix)."""
        fix = "use N, uniform:LO:HI, normal:MEAN:SD or choice:A,B,C with positive integers, e.g. uniform:128:1024"
        kind, _, rest = text.partition(":")
        try:
            if not rest:
                spec = cls(kind="fixed", values=(int(kind),))
            elif kind in ("uniform", "normal"):
                lo, hi = rest.split(":")
                spec = cls(kind=kind, values=(int(lo), int(hi)))
            elif kind == "choice":
                spec = cls(kind="choice", values=tuple(int(x) for x in rest.split(",")))
            else:
                raise ValueError(kind)
        except ValueError:
            problems.add(field, "is not a length specification", fix, text)
            return None
        ok = all(x > 0 for x in spec.values) if spec.kind != "normal" else spec.values[0] > 0 and spec.values[1] >= 0
        if spec.kind == "uniform" and ok:
            ok = spec.values[0] <= spec.values[1]
        if not ok:
            problems.add(field, "needs positive integers (and LO <= HI)", fix, text)
            return None
        return spec


@dataclass(frozen=True, kw_only=True)
class ThinkTime:
    """How long a chat user waits between an answer and their next message, in seconds.

    Written ``S``, ``uniform:LO:HI``, ``exp:MEAN`` (exponential) or ``normal:MEAN:SD`` (cut at
    0) on the command line. Drawn from a seeded generator per session, so runs repeat.
    """

    kind: str = "fixed"
    """``fixed`` (default), ``uniform``, ``exp`` or ``normal``."""
    values: tuple[float, ...] = (0.0,)
    """Parameters in seconds: (S,), (LO, HI), (MEAN,) or (MEAN, SD) (default (0.0,): no wait)."""

    def draw(self, rng: random.Random) -> float:
        v = self.values
        if self.kind == "uniform":
            return rng.uniform(v[0], v[1])
        if self.kind == "exp":
            return rng.expovariate(1.0 / v[0]) if v[0] > 0 else 0.0
        if self.kind == "normal":
            return max(0.0, rng.gauss(v[0], v[1]))
        return v[0]

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"{self.values[0]:g}"
        return f"{self.kind}:{':'.join(f'{x:g}' for x in self.values)}"

    @property
    def mean_s(self) -> float:
        """The distribution's mean (the normal's cut at 0 ignored)."""
        v = self.values
        return (v[0] + v[1]) / 2 if self.kind == "uniform" else v[0]

    @classmethod
    def parse(cls, text: str, field: str, problems: Problems) -> ThinkTime | None:
        """Parse a command-line think time; a bad one is recorded on ``problems`` (field, value, fix)."""
        fix = "use seconds S, uniform:LO:HI, exp:MEAN or normal:MEAN:SD with numbers >= 0, e.g. exp:5"
        kind, _, rest = text.partition(":")
        try:
            if not rest:
                spec = cls(kind="fixed", values=(float(kind),))
            elif kind in ("uniform", "normal"):
                lo, hi = rest.split(":")
                spec = cls(kind=kind, values=(float(lo), float(hi)))
            elif kind == "exp":
                spec = cls(kind="exp", values=(float(rest),))
            else:
                raise ValueError(kind)
        except ValueError:
            problems.add(field, "is not a think-time specification", fix, text)
            return None
        ok = all(math.isfinite(x) and x >= 0 for x in spec.values)
        if spec.kind == "uniform" and ok:
            ok = spec.values[0] <= spec.values[1]
        if not ok:
            problems.add(field, "needs finite seconds >= 0 (and LO <= HI)", fix, text)
            return None
        return spec


@dataclass(frozen=True, kw_only=True)
class Prompt:
    """One dataset entry: the prompt text and, when the dataset says, the output length to ask for."""

    text: str
    output_tokens: int | None = None
    group: int | None = None
    """Shared-prefix group of the prompt (None: not from a shared-prefix set)."""


@dataclass(frozen=True, kw_only=True)
class LevelSpec:
    """One load level: closed loop (``concurrency``) or open loop (``rate``), bounded in count and/or time."""

    concurrency: int | None = None
    """Requests in flight at once, closed loop (default None: open loop, ``rate`` is required)."""
    rate: float | None = None
    """Mean arrivals per second, open loop (default None: closed loop)."""
    arrival: str = "poisson"
    """Open-loop arrival process, ``poisson``, ``gamma`` or ``constant`` (default poisson)."""
    burstiness: float = 1.0
    """Shape of the gamma inter-arrival times (default 1.0, which is Poisson): below 1 burstier."""
    requests: int | None = None
    """Stop issuing after this many requests (default None: bounded by ``duration_s`` only)."""
    duration_s: float | None = None
    """Stop issuing after this many seconds (default None: bounded by ``requests`` only)."""
    prompt: LengthSpec = LengthSpec(values=(128,))
    """Prompt length in tokens (default 128; ignored for dataset prompts)."""
    output: LengthSpec = LengthSpec(values=(128,))
    """Output length in tokens, sent as max_tokens with ignore_eos (default 128)."""
    warmup: int = 0
    """Requests sent first and left out of the level's figures, on top of ``requests``
    (default 0: every request counts)."""
    ramp_s: float = 0.0
    """Closed loop: spread the workers' first requests evenly over this many seconds, worker i
    starting at ``i * ramp_s / concurrency`` (default 0: all at once). Every request still counts;
    summary.json reports the ramp with the level."""
    trace_offsets_s: tuple[float, ...] = ()
    """Trace replay: the arrival times (s from the level's start) of the dataset's requests, in
    order (default empty: arrivals drawn from ``arrival``). Set by :func:`load_trace`."""
    think_time: ThinkTime | None = None
    """Multi-turn chat sessions (:mod:`eks_llm_stack.bench.sessions`): ``concurrency`` is then the
    number of virtual users, each running whole sessions and waiting this long between an
    answer and the next turn (default None: independent requests)."""

    def load(self) -> dict[str, Any]:
        """The keys that describe this level in summary.json."""
        out: dict[str, Any] = {"concurrency": self.concurrency, "rate": self.rate}
        if self.concurrency is not None and self.ramp_s:
            out["ramp_s"] = self.ramp_s
        if self.think_time is not None:
            out["mode"] = "sessions"
            out["think_time_s"] = self.think_time.describe()
        if self.rate is not None:
            out["arrival"] = self.arrival
            if self.arrival == "gamma":
                out["burstiness"] = self.burstiness
        out["prompt_length"] = self.prompt.describe()
        out["output_length"] = self.output.describe()
        return out

    def label(self) -> str:
        if self.think_time is not None:
            return f"{self.concurrency} chat users"
        if self.concurrency is not None:
            ramp = f", ramp {self.ramp_s:g} s" if self.ramp_s else ""
            return f"concurrency {self.concurrency}{ramp}"
        return f"{self.arrival} {self.rate:g} req/s"


def synthetic_prompt(tokens: int, rng: random.Random) -> str:
    """About ``tokens`` tokens of random common words."""
    return " ".join(rng.choices(_WORDS, k=tokens))


def load_dataset(path: Path) -> tuple[Prompt, ...]:
    """ShareGPT JSON (first human turn; output length from the first reply) or JSONL of prompts.

    A JSONL line is a JSON string, or an object with ``prompt`` (or ``text``) and optionally
    ``output_tokens`` / ``max_tokens``.
    """
    p = Problems("dataset")
    text = read_input(path, "dataset")
    prompts: list[Prompt] = []
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            rows = json.loads(text)
        except ValueError as exc:
            raise ConfigError("dataset", [_problem(str(path), f"is not valid JSON ({exc})", _DATASET_FIX)]) from None
        for i, row in enumerate(rows):
            convs = row.get("conversations") if isinstance(row, dict) else None
            if not isinstance(convs, list):
                p.add(f"{path}[{i}]", "has no 'conversations' list", _DATASET_FIX)
                continue
            human = [c.get("value") for c in convs if isinstance(c, dict) and c.get("from") in ("human", "user")]
            reply = [c.get("value") for c in convs if isinstance(c, dict) and c.get("from") in ("gpt", "assistant")]
            if not human or not isinstance(human[0], str) or not human[0].strip():
                continue  # ShareGPT has conversations without a human turn; skipping them is the norm
            out = None
            if reply and isinstance(reply[0], str):
                # Word count x 4/3 approximates tokens for English text.
                out = max(1, math.ceil(len(reply[0].split()) * 4 / 3))
            prompts.append(Prompt(text=human[0], output_tokens=out))
    else:
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                p.add(f"{path}:{n}", "is not a JSON value", _DATASET_FIX, line[:60])
                continue
            if isinstance(row, str):
                prompts.append(Prompt(text=row))
            elif isinstance(row, dict) and isinstance(ptext := row.get("prompt", row.get("text")), str):
                out = row.get("output_tokens", row.get("max_tokens"))
                prompts.append(Prompt(text=ptext, output_tokens=out if isinstance(out, int) else None))
            else:
                p.add(f"{path}:{n}", "has no prompt", _DATASET_FIX, line[:60])
    if not prompts and not p.problems:
        p.add(str(path), "holds no prompts", _DATASET_FIX)
    p.raise_if_any()
    return tuple(prompts)


_DATASET_FIX = (
    "use ShareGPT JSON ([{'conversations': [{'from': 'human', 'value': ...}, ...]}]) or JSONL with one "
    "prompt string or {'prompt': ..., 'output_tokens': N} per line"
)


def read_input(path: Path, subject: str) -> str:
    """The text of an input file (a dataset, a sessions file); one clear error when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            subject, [Problem(str(path), f"cannot be read ({exc.strerror})", "pass a readable file")]
        ) from None


def _problem(field: str, message: str, fix: str) -> Problem:
    return Problem(field, message, fix)


def shared_prefix_prompts(
    *, groups: int, per_group: int, prefix_tokens: int, suffix_tokens: int, seed: int = 0
) -> tuple[Prompt, ...]:
    """``groups`` x ``per_group`` prompts: each group shares a ``prefix_tokens`` prefix (a system
    prompt, a document) and every prompt has its own ``suffix_tokens`` suffix. Interleaved
    (group 0, 1, ..., 0, 1, ...) so that consecutive requests do not share a prefix."""
    rng = random.Random(f"shared-prefix:{seed}")
    prefixes = [synthetic_prompt(prefix_tokens, rng) for _ in range(groups)]
    return tuple(
        Prompt(text=f"{prefixes[g]} {synthetic_prompt(suffix_tokens, rng)}", group=g)
        for _ in range(per_group)
        for g in range(groups)
    )


TRACE_FORMAT = (
    'JSONL, one request per line in arrival order: {"timestamp_s": seconds from the trace\'s start, '
    '"prompt": text or "prompt_tokens": N, "output_tokens": N}'
)


def load_trace(path: Path, *, seed: int = 0) -> tuple[tuple[Prompt, ...], tuple[float, ...]]:
    """A timestamped trace (:data:`TRACE_FORMAT`): its prompts and their arrival times."""
    p = Problems("trace")
    rng = random.Random(f"trace:{seed}")
    prompts: list[Prompt] = []
    times: list[float] = []
    lines = read_input(path, "trace").splitlines()
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            t = float(row["timestamp_s"])
            out = int(row["output_tokens"])
            text = (
                row["prompt"]
                if isinstance(row.get("prompt"), str)
                else synthetic_prompt(int(row["prompt_tokens"]), rng)
            )
        except (ValueError, KeyError, TypeError) as exc:
            p.add(f"{path}:{n}", f"is not a trace row ({type(exc).__name__}: {exc})", TRACE_FORMAT, line[:80])
            continue
        if (times and t < times[-1]) or t < 0 or out < 1:
            p.add(f"{path}:{n}", "has a timestamp before the previous one, or no output", TRACE_FORMAT, line[:80])
            continue
        prompts.append(Prompt(text=text, output_tokens=out))
        times.append(t)
    if not prompts and not p.problems:
        p.add(str(path), "holds no requests", TRACE_FORMAT)
    p.raise_if_any()
    start = times[0]
    return tuple(prompts), tuple(t - start for t in times)


def shard_trace(
    prompts: tuple[Prompt, ...], offsets_s: tuple[float, ...], index: int, count: int
) -> tuple[tuple[Prompt, ...], tuple[float, ...]]:
    """Harness ``index`` of ``count``'s part of a trace: every ``count``-th request from ``index``.

    The parts are disjoint and together are the whole trace. Arrival times stay on the trace's
    own clock (not re-based): with the start barrier every harness starts the level at one
    instant, so each request leaves at its trace time, whichever harness sends it. Round robin
    rather than contiguous blocks, so every harness carries the trace's load shape all along.
    """
    keep = range(index, len(prompts), count)
    return tuple(prompts[i] for i in keep), tuple(offsets_s[i] for i in keep)


def scenario_levels(
    name: str, *, prompt: LengthSpec | None, output: LengthSpec | None, dataset_size: int | None
) -> tuple[LevelSpec, ...]:
    """REFERENCE.md's scenarios as load levels. ``prompt``/``output`` override the scenario's lengths."""
    if name == "baseline":
        return (
            LevelSpec(
                concurrency=1,
                requests=100,
                prompt=prompt or LengthSpec(values=(128,)),
                output=output or LengthSpec(values=(128,)),
            ),
        )
    if name == "saturation":
        return tuple(
            LevelSpec(
                concurrency=c,
                requests=max(20, 4 * c),
                duration_s=120.0,
                prompt=prompt or LengthSpec(values=(512,)),
                output=output or LengthSpec(values=(128,)),
            )
            for c in (1, 5, 10, 20, 50, 100)
        )
    if name == "production":
        # Mixed lengths (short chat turns to long documents) and Poisson arrivals.
        return (
            LevelSpec(
                rate=2.0,
                arrival="poisson",
                duration_s=300.0,
                requests=2000,
                prompt=prompt or LengthSpec(kind="choice", values=(64, 256, 256, 1024, 4096)),
                output=output or LengthSpec(kind="uniform", values=(32, 512)),
            ),
        )
    if name == "dataset":
        n = dataset_size or 0
        return (
            LevelSpec(
                concurrency=10, requests=min(n, 1000), duration_s=600.0, output=output or LengthSpec(values=(256,))
            ),
        )
    if name == "long-context":
        return tuple(
            LevelSpec(
                concurrency=1,
                requests=4,
                prompt=LengthSpec(values=(k * 1024,)),
                output=output or LengthSpec(values=(64,)),
            )
            for k in (4, 8, 16, 32, 64, 128)
        )
    raise ConfigError(
        "bench run", [_problem("--scenario", f"unknown scenario {name!r}", f"use one of {', '.join(SCENARIOS)}")]
    )
