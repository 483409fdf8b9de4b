#!/usr/bin/env python3
"""Side-by-side comparison with other load generators, against one neutral simulator.

    make bench-peers                         # builds the peers' virtualenvs, then runs this
    .venv/bin/python benchmarks/harness_peers.py --reps 3 --peers-dir .venv-peers
    .venv/bin/python benchmarks/harness_peers.py --only capacity --reps 1   # one scenario, quick look

Every client runs as its own process on core 1 (``taskset``); the simulator (``eks-llm-stack
simulate``) on core 0, one simulator per scenario, shared by every client. Repetitions are
interleaved (rep 1 runs every client, then rep 2 in another order, ...) and the table shows
medians. Each figure of a peer is read from the peer's own output file (``json`` report):

- inference-perf 0.7: ``stage_0_lifecycle_metrics.json`` (``successes.latency.*``, seconds;
  ``successes.throughput.*``);
- GuideLLM 0.8: the ``--output kind=json`` file, ``benchmarks[0].metrics.*.successful``;
- eks-llm-stack: ``summary.json``, ``levels[0]``.

Client CPU is read from ``/proc`` for the client's whole process tree (worker processes
included) and counted only between two samples taken while the simulator was generating
(its ``vllm:generation_tokens_total``), so start-up, tokenizer loading and report writing are
left out for every client alike. Tokens per client CPU-second is that window's tokens over that
window's CPU: the throughput one client core sustains.

The peers need no model: a word-level tokenizer (one token per whitespace-separated word, as the
simulator counts them) is written next to the results and handed to both. Loopback only
(127.0.0.1); every level is bounded in requests. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _simulator import simulator_process

ROOT = Path(__file__).resolve().parents[1]
MODEL = "simulated-model"
SIM_CORE, CLIENT_CORE = "0", "1"
PROMPT_TOKENS = 64

_TOKENIZER = r"""
import sys
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast
words = ["tok"] + [f"w{i}" for i in range(1000)]
# Unknown words become "tok", an ordinary token: decoding random ids gives words, never nothing.
tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="tok"))
tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
tok.decoder = decoders.WordPiece(prefix="##")  # joins tokens with single spaces
PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=1_000_000).save_pretrained(sys.argv[1])
"""


@dataclass(frozen=True, kw_only=True)
class Scenario:
    name: str
    ttft_ms: float
    itl_ms: float
    tokens_per_chunk: int
    concurrency: int
    requests: int
    output_tokens: int
    clients: tuple[str, ...]

    @property
    def e2e_s(self) -> float:
        return (self.ttft_ms + (self.output_tokens - self.tokens_per_chunk) * self.itl_ms) / 1e3


@dataclass
class Result:
    """What one client reported for one run (from its own files) and what it cost (from /proc)."""

    ttft_p99_ms: float = float("nan")
    itl_mean_ms: float = float("nan")
    requests_per_s: float = float("nan")
    output_tokens_per_s: float = float("nan")
    completed: int = 0
    cpu_s: float = float("nan")
    window_tokens: int = 0
    wall_s: float = float("nan")
    note: str = ""

    @property
    def tokens_per_cpu_s(self) -> float:
        return self.window_tokens / self.cpu_s if self.cpu_s and self.cpu_s > 0 else float("nan")

    @property
    def cpu_us_per_token(self) -> float:
        return 1e6 * self.cpu_s / self.window_tokens if self.window_tokens else float("nan")


def scenarios(ramp_s: float) -> list[Scenario]:
    ours = ("eks-llm-stack", "inference-perf", "guidellm")
    return [
        Scenario(name="c1", ttft_ms=100, itl_ms=20, tokens_per_chunk=1, concurrency=1, requests=12,
                 output_tokens=64, clients=ours),
        Scenario(name="c128", ttft_ms=100, itl_ms=20, tokens_per_chunk=1, concurrency=128, requests=640,
                 output_tokens=64, clients=("eks-llm-stack", f"eks-llm-stack --ramp {ramp_s:g}s",
                                            "inference-perf", "guidellm")),
        Scenario(name="capacity", ttft_ms=1, itl_ms=1, tokens_per_chunk=1, concurrency=256, requests=2048,
                 output_tokens=256, clients=ours),
        Scenario(name="multi-token", ttft_ms=100, itl_ms=20, tokens_per_chunk=4, concurrency=4, requests=24,
                 output_tokens=64, clients=ours),
    ]  # fmt: skip


# -- processes -----------------------------------------------------------------------------------


def _pinned(core: str, cmd: list[str]) -> list[str]:
    return (["taskset", "-c", core] if shutil.which("taskset") and (os.cpu_count() or 1) >= 2 else []) + cmd


@contextmanager
def simulator(sc: Scenario) -> Iterator[str]:
    args = ["--model", MODEL, "--ttft-ms", str(sc.ttft_ms), "--itl-ms", str(sc.itl_ms),
            "--tokens-per-chunk", str(sc.tokens_per_chunk)]  # fmt: skip
    with simulator_process(args, core=int(SIM_CORE)) as url:
        _warm_up(url)
        yield url


def _warm_up(url: str) -> None:
    """A few requests first, so that no client pays for the simulator's first (cold) requests."""
    body = json.dumps({"model": MODEL, "prompt": "warm up", "max_tokens": 4, "stream": True}).encode()
    for _ in range(4):
        req = urllib.request.Request(url + "/v1/completions", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()


_GEN = re.compile(rb"^vllm:generation_tokens_total\{[^}]*\} ([0-9.e+]+)$", re.M)


def generated_tokens(url: str) -> int:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
        m = _GEN.search(resp.read())
    return int(float(m.group(1))) if m else 0


def tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) of a process and every live descendant, plus their reaped children."""
    ppid: dict[int, int] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        ppid[pid] = int(fields[1])
        cpu[pid] = sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
    total = 0.0
    for pid in cpu:
        p = pid
        while p and p != root:
            p = ppid.get(p, 0)
        if p == root:
            total += cpu[pid]
    return total


class Sampler:
    """Samples (client tree CPU, tokens the simulator generated) every ``interval`` s while a client runs."""

    def __init__(self, pid: int, url: str, interval: float = 0.2) -> None:
        self.pid, self.url, self.interval = pid, url, interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            with suppress(OSError):
                self.samples.append((tree_cpu_s(self.pid), generated_tokens(self.url)))
            self._stop.wait(self.interval)

    def window(self) -> tuple[float, int]:
        """CPU and tokens between the first and the last sample taken strictly inside the load."""
        if len(self.samples) < 2:
            return float("nan"), 0
        first_tokens, last_tokens = self.samples[0][1], self.samples[-1][1]
        inside = [s for s in self.samples if first_tokens < s[1] < last_tokens]
        if len(inside) < 2:
            return float("nan"), 0
        return inside[-1][0] - inside[0][0], inside[-1][1] - inside[0][1]


def run_client(cmd: list[str], url: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Result:
    res = Result()
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(_pinned(CLIENT_CORE, cmd), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        with Sampler(proc.pid, url) as sampler:
            try:
                rc = proc.wait(900)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
        res.wall_s = time.perf_counter() - t0
        res.cpu_s, res.window_tokens = sampler.window()
        if rc != 0:
            log.seek(0)
            res.note = f"exit {rc}: " + log.read()[-400:].decode("utf-8", "replace").strip().replace("\n", " | ")
    return res


# -- the clients -----------------------------------------------------------------------------------


def ours(sc: Scenario, url: str, out: Path, ramp_s: float | None) -> Result:
    cmd = [sys.executable, "-m", "eks_llm_stack.cli", "bench", "run", "--url", url, "--model", MODEL,
           "--concurrency", str(sc.concurrency), "--requests", str(sc.requests),
           "--prompt-tokens", str(PROMPT_TOKENS), "--output-tokens", str(sc.output_tokens),
           "--out", str(out), "--no-plots", "--no-progress", "--timeout", "120"]  # fmt: skip
    if ramp_s:
        cmd += ["--ramp", str(ramp_s)]
    res = run_client(cmd, url, cwd=ROOT)
    try:
        lvl = json.loads((out / "summary.json").read_text())["levels"][0]
    except (OSError, ValueError, KeyError, IndexError) as exc:
        res.note = res.note or f"no summary.json ({exc})"
        return res
    res.ttft_p99_ms = lvl["ttft_ms"]["p99"]
    res.itl_mean_ms = lvl["itl_ms"]["mean"]
    res.requests_per_s = lvl["requests_per_s"]
    res.output_tokens_per_s = lvl["output_tokens_per_s"]
    res.completed = lvl["completed"]
    return res


def inference_perf(sc: Scenario, url: str, out: Path, venv: Path, tokenizer: Path) -> Result:
    config = {
        "load": {"type": "concurrent", "stages": [{"num_requests": sc.requests, "concurrency_level": sc.concurrency}]},
        "api": {"type": "completion", "streaming": True},
        "server": {"type": "vllm", "model_name": MODEL, "base_url": url, "ignore_eos": True},
        "tokenizer": {"pretrained_model_name_or_path": str(tokenizer)},
        "data": {
            "type": "random",
            "input_distribution": _fixed(PROMPT_TOKENS, sc.requests),
            "output_distribution": _fixed(sc.output_tokens, sc.requests),
        },
        "report": {"request_lifecycle": {"summary": True, "per_stage": True, "per_request": False}},
        "storage": {"local_storage": {"path": str(out)}},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(json.dumps(config))  # JSON is YAML
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    res = run_client([str(venv / "bin" / "inference-perf"), "-c", str(out / "config.yaml")], url, env=env, cwd=out)
    try:
        s = json.loads((out / "stage_0_lifecycle_metrics.json").read_text())["successes"]
    except (OSError, ValueError, KeyError) as exc:
        res.note = res.note or f"no stage_0_lifecycle_metrics.json ({exc})"
        return res
    lat = s["latency"]
    res.ttft_p99_ms = lat["time_to_first_token"]["p99"] * 1e3
    res.itl_mean_ms = lat["inter_token_latency"]["mean"] * 1e3
    res.requests_per_s = s["throughput"]["requests_per_sec"]
    res.output_tokens_per_s = s["throughput"]["output_tokens_per_sec"]
    res.completed = s["count"]
    return res


def _fixed(n: int, count: int) -> dict[str, Any]:
    return {"min": n, "max": n, "mean": n, "std_dev": 0, "total_count": count}


def guidellm(sc: Scenario, url: str, out: Path, venv: Path, tokenizer: Path) -> Result:
    out.mkdir(parents=True, exist_ok=True)
    report = out / "guidellm.json"
    cmd = [str(venv / "bin" / "guidellm"), "run",
           "--backend", f"kind=openai_http,target={url},model={MODEL},request_format=/v1/completions",
           "--profile", f"kind=concurrent,streams={sc.concurrency}",
           "--constraint", f"kind=max_requests,count={sc.requests}",
           "--data", f"kind=synthetic_text,prompt_tokens={PROMPT_TOKENS},output_tokens={sc.output_tokens}",
           "--tokenizer", f"kind=hf_auto,model={tokenizer}",
           "--output", f"kind=json,path={report}", "--disable-console-interactive"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GUIDELLM__LOGGING__LOG_FILE": ""}
    res = run_client(cmd, url, env=env, cwd=out)
    try:
        m = json.loads(report.read_text())["benchmarks"][0]["metrics"]
    except (OSError, ValueError, KeyError, IndexError) as exc:
        res.note = res.note or f"no {report.name} ({exc})"
        return res
    res.ttft_p99_ms = m["time_to_first_token_ms"]["successful"]["percentiles"]["p99"]
    res.itl_mean_ms = m["inter_token_latency_ms"]["successful"]["mean"]
    res.requests_per_s = m["requests_per_second"]["successful"]["mean"]
    res.output_tokens_per_s = m["output_tokens_per_second"]["successful"]["mean"]
    res.completed = m["request_totals"]["successful"]
    return res


# -- the run ---------------------------------------------------------------------------------------


@dataclass
class Table:
    results: dict[tuple[str, str], list[Result]] = field(default_factory=dict)

    def add(self, scenario: str, client: str, r: Result) -> None:
        self.results.setdefault((scenario, client), []).append(r)

    def median(self, scenario: str, client: str, get: Callable[[Result], float]) -> float:
        vals = [get(r) for r in self.results.get((scenario, client), []) if get(r) == get(r)]
        return statistics.median(vals) if vals else float("nan")


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3, help="interleaved repetitions (default 3)")
    ap.add_argument("--peers-dir", type=Path, default=ROOT / ".venv-peers",
                    help="where the peers' virtualenvs are (inference-perf/, guidellm/; default .venv-peers)")  # fmt: skip
    ap.add_argument("--only", action="append", help="run only this scenario (c1, c128, capacity, multi-token)")
    ap.add_argument("--clients", help="comma-separated subset of clients (default all)")
    ap.add_argument("--ramp", type=float, default=1.4,
                    help="the ramp of the second eks-llm-stack row at c=128, seconds (default 1.4: one E2E)")  # fmt: skip
    ap.add_argument("--out", type=Path, help="keep every client's output here (default: a temporary directory)")
    ap.add_argument("--lock", default=None,
                    help="flock this file around each measurement, so two benchmarks sharing a machine never "
                    "measure at once (default: no lock)")  # fmt: skip
    args = ap.parse_args()

    peers = {"inference-perf": args.peers_dir / "inference-perf", "guidellm": args.peers_dir / "guidellm"}
    missing = [n for n, v in peers.items() if not (v / "bin" / n).exists()]
    if missing:
        print(f"missing peer virtualenvs: {', '.join(missing)} under {args.peers_dir} (run: make bench-peers)")
        return 2
    work = args.out or Path(tempfile.mkdtemp(prefix="bench-peers-"))
    work.mkdir(parents=True, exist_ok=True)
    tokenizer = work / "tokenizer"
    if not (tokenizer / "tokenizer.json").exists():
        subprocess.run([str(peers["inference-perf"] / "bin" / "python"), "-c", _TOKENIZER, str(tokenizer)],
                       check=True, capture_output=True)  # fmt: skip
    # The orchestrator samples /proc and /metrics: keep it off the client's core.
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {int(SIM_CORE)})
    wanted = set(args.clients.split(",")) if args.clients else None
    table = Table()
    print(f"start: {_load()}", flush=True)
    for sc in scenarios(args.ramp):
        if args.only and sc.name not in args.only:
            continue
        clients = [c for c in sc.clients if wanted is None or c.split(" ")[0] in wanted]
        with simulator(sc) as url:
            for rep in range(args.reps):
                order = clients[rep % len(clients) :] + clients[: rep % len(clients)]
                for client in order:
                    out = work / sc.name / f"{client.replace(' ', '_')}-{rep}"
                    shutil.rmtree(out, ignore_errors=True)
                    with _locked(args.lock):
                        load = _load()
                        if client.startswith("eks-llm-stack"):
                            r = ours(sc, url, out, args.ramp if "--ramp" in client else None)
                        elif client == "inference-perf":
                            r = inference_perf(sc, url, out, peers[client], tokenizer)
                        else:
                            r = guidellm(sc, url, out, peers[client], tokenizer)
                    table.add(sc.name, client, r)
                    print(f"  {sc.name:<11} rep {rep + 1} {client:<24} ttft p99 {r.ttft_p99_ms:8.1f} ms  "
                          f"req/s {r.requests_per_s:7.2f}  out tok/s {r.output_tokens_per_s:9.0f}  "
                          f"itl mean {r.itl_mean_ms:6.2f} ms  cpu us/tok {r.cpu_us_per_token:6.1f}  "
                          f"ok {r.completed}  wall {r.wall_s:5.1f} s  ({load}) {r.note}", flush=True)  # fmt: skip
    print(f"end: {_load()}")
    print_table(table, scenarios(args.ramp), args.reps)
    print(f"outputs: {work}")
    return 0


@contextmanager
def _locked(path: str | None) -> Iterator[None]:
    if not path:
        yield
        return
    import fcntl

    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def print_table(table: Table, scs: list[Scenario], reps: int) -> None:
    by = {s.name: s for s in scs}
    rows: list[tuple[str, str, Callable[[Result], float], str]] = []
    if "c1" in by:
        rows.append(("c1", "c=1: TTFT p99 - truth (ms)", lambda r: r.ttft_p99_ms - by["c1"].ttft_ms, "{:+.2f}"))
    if "c128" in by:
        ideal = by["c128"].concurrency / by["c128"].e2e_s
        rows += [
            ("c128", "c=128: TTFT p99 - truth (ms)", lambda r: r.ttft_p99_ms - by["c128"].ttft_ms, "{:+.2f}"),
            ("c128", f"c=128: request rate / ideal ({ideal:.1f}/s)", lambda r: r.requests_per_s / ideal, "{:.3f}"),
            ("c128", "c=128: client CPU us per token", lambda r: r.cpu_us_per_token, "{:.1f}"),
        ]
    if "capacity" in by:
        rows += [
            ("capacity", "capacity: output tokens/s received", lambda r: r.output_tokens_per_s, "{:.0f}"),
            ("capacity", "capacity: tokens per client CPU-second", lambda r: r.tokens_per_cpu_s, "{:.0f}"),
            ("capacity", "capacity: client CPU us per token", lambda r: r.cpu_us_per_token, "{:.1f}"),
        ]
    if "multi-token" in by:
        itl = by["multi-token"].itl_ms
        rows.append(("multi-token", f"4 tokens/chunk: ITL mean (truth {itl:g} ms)", lambda r: r.itl_mean_ms, "{:.2f}"))
    clients: list[str] = []
    for _, c in table.results:
        if c not in clients:
            clients.append(c)
    width = max(14, *(len(c) for c in clients))
    print(f"\nmedians of {reps} interleaved repetitions")
    print(f"{'':<46}" + "".join(f"{c:>{width + 2}}" for c in clients))
    for sc_name, label, get, fmt in rows:
        cells = []
        for c in clients:
            v = table.median(sc_name, c, get)
            cells.append(f"{'-' if v != v else fmt.format(v):>{width + 2}}")
        print(f"{label:<46}" + "".join(cells))


if __name__ == "__main__":
    sys.exit(main())
