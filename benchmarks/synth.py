#!/usr/bin/env python3
"""Synth benchmark: whole-process `cdk synth` time and peak memory, plus an in-process breakdown.

    make bench-synth                 # default profile, 3 runs
    make bench-synth PROFILE=production.example
    .venv/bin/python benchmarks/synth.py --runs 5 --profile ci-ephemeral

Prints figures; asserts nothing (speed targets live here, not in the tests).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CDK = ROOT / "node_modules" / ".bin" / "cdk"

_BREAKDOWN = r"""
import json, os, sys, time
t0 = time.perf_counter()
import aws_cdk  # noqa: F401
import cdk8s  # noqa: F401
t1 = time.perf_counter()
from aws_cdk import App
from eks_llm_stack.synth import build, write_chart_manifests
from pathlib import Path
ctx = json.loads(Path("cdk.json").read_text())["context"]
app = App(context=ctx, outdir=sys.argv[2], builtin_cloud_formation_validation=False)
t2 = time.perf_counter()
built = build(sys.argv[1], app=app)
t3 = time.perf_counter()
write_chart_manifests(built, Path(sys.argv[3]))
app.synth()
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "construct": t3 - t2, "synth": t4 - t3, "resources": sum(
    len(s.template.get("Resources", {})) for s in app.synth().stacks)}))
"""


def _tree_rss_kib(root_pid: int) -> int:
    """Resident memory of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/status") as f:
                kib = next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = kib
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def whole_process(profile: str, env: dict[str, str]) -> tuple[float, int]:
    """One `cdk synth` through the CLI: wall seconds and peak RSS (MiB) of the whole process tree."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [str(CDK), "synth", "--quiet", "--ci", "-o", f"{out}/cdk.out", "-c", f"profile={profile}"]
        cmd += ["-c", f"manifests_dir={out}/manifests"]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _tree_rss_kib(proc.pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, err = proc.communicate()
        elapsed = time.perf_counter() - start
        done.set()
        sampler.join()
        if proc.returncode != 0:
            sys.exit(f"cdk synth failed:\n{err[-2000:]}")
        return elapsed, peak // 1024


def in_process(profile: str, env: dict[str, str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        result = subprocess.run(
            [sys.executable, "-c", _BREAKDOWN, profile, f"{out}/cdk.out", f"{out}/manifests"],
            cwd=ROOT,
            env={**env, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(result.stdout.strip().splitlines()[-1])


def _fmt(values: list[float], unit: str, digits: int = 2) -> str:
    return f"median {statistics.median(values):.{digits}f} {unit} (min {min(values):.{digits}f}, max {max(values):.{digits}f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not CDK.exists():
        sys.exit("the aws-cdk CLI is missing: run `make setup` first")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)

    print(f"eks-llm-stack synth benchmark — profile {args.profile}, {args.runs} runs, {os.cpu_count()} cores")
    times, peaks = [], []
    for i in range(args.runs):
        t, m = whole_process(args.profile, env)
        times.append(t)
        peaks.append(m)
        print(f"  run {i + 1}: cdk synth {t:.2f} s, peak RSS {m} MiB", flush=True)
    print(f"whole process (cdk CLI -> python app.py -> jsii): {_fmt(times, 's')}")
    print(f"peak memory of the process tree:                 {_fmt([float(p) for p in peaks], 'MiB', 0)}")

    parts: dict[str, list[float]] = {"import": [], "construct": [], "synth": []}
    resources = 0
    for _ in range(args.runs):
        r = in_process(args.profile, env)
        resources = int(r["resources"])
        for k in parts:
            parts[k].append(r[k])
    print("in-process breakdown (fresh interpreter each run):")
    print(f"  import aws_cdk + cdk8s: {_fmt(parts['import'], 's')}")
    print(f"  construct the app:      {_fmt(parts['construct'], 's')}")
    print(f"  synth + manifests:      {_fmt(parts['synth'], 's')}")
    print(f"  resources synthesized:  {resources}")
    cli = statistics.median(times) - sum(statistics.median(v) for v in parts.values())
    print(f"  CLI and process start-up (whole minus in-process): {cli:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
