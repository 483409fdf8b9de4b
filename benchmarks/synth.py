#!/usr/bin/env python3
"""Synth benchmark: `make synth` against the old recipe and against plain aws-cdk-lib peers, in one run.

    make bench-synth                       # 3 interleaved rounds
    .venv/bin/python benchmarks/synth.py --runs 5
    .venv/bin/python benchmarks/synth.py --runs 3 --no-peers   # only this package's cases

Every case is a whole process (wall time from start to exit, peak RSS of the process tree), run in
round-robin order (one of each case per round), so a change of machine load hits every case alike:

* ``make synth`` of ``default`` and ``production.example`` (``app.py -c ... --summary``: the app writes
  ``cdk.out`` and prints the summary itself);
* the old recipe, for the before/after ratio: ``cdk synth --notices`` (the notices probe that
  ``cdk.json`` now turns off) then ``eks-llm-stack summary`` in a second process;
* ``production.example`` with its models replaced by 1 and by 50 copies of its first model;
* peers (``benchmarks/peers/synth/``): the same four-stack EKS + GPU app written with plain aws-cdk-lib
  in TypeScript (compiled once with ``tsc``; ``cdk synth`` runs ``node build/app.js``) and in Python,
  each through ``cdk synth`` and run directly; and the cdk-eks-blueprints GPU blueprint (GpuBuilder).
  The peers turn aws-cdk-lib's built-in CloudFormation validation off, as this package's App does (it
  lints the templates in its tests): on this aws-cdk-lib release that validation alone takes several
  seconds. (cdk-eks-blueprints pins an older aws-cdk-lib, which has none.)
  Their npm packages are pinned by each peer's package-lock.json and installed here (``npm ci``), not
  by ``make setup``.

Then an in-process breakdown of ``make synth`` (imports, construction, synthesis). Prints figures;
asserts nothing (speed targets live here, not in the tests).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CDK = ROOT / "node_modules" / ".bin" / "cdk"
PEERS = ROOT / "benchmarks" / "peers" / "synth"
PY = sys.executable

_BREAKDOWN = r"""
import json, sys, time
# Every request to the jsii runtime (a construct, a property, a method, a callback's answer) is one round
# trip to Node.js: counted per phase, as the figure that does not depend on the machine's load.
import jsii._kernel.providers.process as _process
_calls = [0]
_send = _process._NodeProcess.send
def _counted(self, request, response_type):
    _calls[0] += 1
    return _send(self, request, response_type)
_process._NodeProcess.send = _counted
marks = [(time.perf_counter(), 0)]
def mark():
    marks.append((time.perf_counter(), _calls[0]))
import aws_cdk, cdk8s  # noqa: F401
mark()
from pathlib import Path
from aws_cdk import App
from eks_llm_stack.synth import cli_context, synthesize_app
mark()
app = App(context=cli_context(Path("."), {"profile": sys.argv[1], "manifests_dir": sys.argv[3]}), outdir=sys.argv[2],
          builtin_cloud_formation_validation=False)
import eks_llm_stack.synth as s
built = s.build(app=app)
mark()
s.write_chart_manifests(built, Path(sys.argv[3]))
mark()
assembly = app.synth()
mark()
names = ["import aws_cdk + cdk8s", "import eks_llm_stack", "construct (build)", "dist/manifests",
         "app.synth (incl. cdk-nag)"]
print(json.dumps({n: [b[0] - a[0], b[1] - a[1]] for n, a, b in zip(names, marks, marks[1:])}))
"""


@dataclass
class Case:
    name: str
    steps: list[tuple[list[str], Path, dict[str, str]]]
    outdir: Path
    times: list[float] = field(default_factory=list)
    peaks: list[int] = field(default_factory=list)
    resources: int = 0


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


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    """One process: wall seconds and peak RSS (MiB) of its process tree."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kib(proc.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    return elapsed, peak // 1024


def _resources(outdir: Path) -> int:
    return sum(len(json.loads(p.read_text()).get("Resources", {})) for p in outdir.glob("*.template.json"))


def _models_profile(tmp: Path, n: int) -> Path:
    """production.example with its models replaced by ``n`` copies of its first model."""
    data = yaml.safe_load((ROOT / "config" / "production.example.yaml").read_text())
    first = data["models"][0]
    data["models"] = [{**copy.deepcopy(first), "name": f"{first['name']}-{i}"} for i in range(n)]
    path = tmp / f"models-{n}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _prepare_peer(peer: Path, env: dict[str, str]) -> bool:
    """``npm ci`` (from the peer's lock) and ``tsc`` once; False if the packages cannot be installed."""
    marker = peer / "node_modules" / ".installed"
    lock = peer / "package-lock.json"
    if not marker.exists() or marker.stat().st_mtime < lock.stat().st_mtime:
        print(f"  npm ci in {peer.relative_to(ROOT)} ...", flush=True)
        npm = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=peer,
            env=env,
            capture_output=True,
            text=True,
        )
        if npm.returncode != 0:
            print(f"  skipped {peer.name}: npm ci failed: {npm.stderr.strip()[-300:]}")
            return False
        marker.touch()
    built = peer / "build" / "app.js"
    if not built.exists() or built.stat().st_mtime < (peer / "app.ts").stat().st_mtime:
        subprocess.run([str(peer / "node_modules" / ".bin" / "tsc"), "-p", "."], cwd=peer, env=env, check=True)
    return True


def _direct_env(env: dict[str, str], peer: Path, outdir: Path) -> dict[str, str]:
    """What the CDK CLI hands an app (CDK_OUTDIR, CDK_CONTEXT_JSON), for a peer run without the CLI."""
    sys.path.insert(0, str(ROOT))
    from eks_llm_stack.synth import cli_context

    return {**env, "CDK_OUTDIR": str(outdir), "CDK_CONTEXT_JSON": json.dumps(cli_context(peer))}


def _cases(tmp: Path, env: dict[str, str], peers: bool) -> list[Case]:
    def out(name: str) -> Path:
        return tmp / name.replace(" ", "_").replace("/", "_")

    def make_synth(name: str, profile: str) -> Case:
        o = out(name)
        cmd = [PY, "app.py", "-c", f"profile={profile}", "-c", f"manifests_dir={o}/manifests", "-o", f"{o}/cdk.out"]
        return Case(name, [([*cmd, "--summary"], ROOT, env)], o / "cdk.out")

    before = out("before default")
    before_ctx = ["-c", "profile=default", "-c", f"manifests_dir={before}/manifests"]
    summary = [str(Path(PY).parent / "eks-llm-stack"), "summary", f"{before}/cdk.out", f"{before}/manifests"]
    cases = [
        make_synth("make synth default", "default"),
        make_synth("make synth production.example", "production.example"),
        Case(
            "before: cdk synth + summary, default",
            [
                (
                    [str(CDK), "synth", "--notices", "--quiet", "--ci", "-o", f"{before}/cdk.out", *before_ctx],
                    ROOT,
                    env,
                ),
                ([*summary, "--profile", "default"], ROOT, env),
            ],
            before / "cdk.out",
        ),
        make_synth("1 model (production.example)", str(_models_profile(tmp, 1))),
        make_synth("50 models (production.example)", str(_models_profile(tmp, 50))),
    ]
    if not peers:
        return cases
    ts, python, blueprints = PEERS / "ts", PEERS / "python", PEERS / "blueprints"
    if _prepare_peer(ts, env):
        o = out("ts peer cli")
        cases.append(
            Case("TS peer: cdk synth (tsc-compiled JS)", [([str(CDK), "synth", "--quiet", "-o", str(o)], ts, env)], o)
        )
        o = out("ts peer direct")
        cases.append(Case("TS peer: node build/app.js", [(["node", "build/app.js"], ts, _direct_env(env, ts, o))], o))
    o = out("py peer cli")
    cases.append(Case("Python peer: cdk synth", [([str(CDK), "synth", "--quiet", "-o", str(o)], python, env)], o))
    o = out("py peer direct")
    cases.append(Case("Python peer: python app.py", [([PY, "app.py"], python, _direct_env(env, python, o))], o))
    if _prepare_peer(blueprints, env):
        o = out("blueprints")
        cases.append(
            Case("eks-blueprints GPU: cdk synth", [([str(CDK), "synth", "--quiet", "-o", str(o)], blueprints, env)], o)
        )
    return cases


def _load() -> str:
    """The 1, 5 and 15 minute load averages (as `uptime` prints them)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _breakdown(profile: str, env: dict[str, str], runs: int) -> dict[str, list[list[float]]]:
    """``phase -> [[seconds, jsii round trips], ...]``, one pair per run."""
    parts: dict[str, list[list[float]]] = {}
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as out:
            result = subprocess.run(
                [PY, "-c", _BREAKDOWN, profile, f"{out}/cdk.out", f"{out}/manifests"],
                cwd=ROOT,
                env={**env, "PYTHONPATH": str(ROOT)},
                capture_output=True,
                text=True,
                check=True,
            )
        for k, v in json.loads(result.stdout.strip().splitlines()[-1]).items():
            parts.setdefault(k, []).append(v)
    return parts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--no-peers", action="store_true", help="skip the TypeScript, Python and blueprints peers")
    args = parser.parse_args()
    if not CDK.exists():
        sys.exit("the aws-cdk CLI is missing: run `make setup` first")
    env = {**os.environ, "PATH": f"{Path(PY).parent}{os.pathsep}{os.environ['PATH']}", "CI": "true"}
    env.update(CDK_DISABLE_CLI_TELEMETRY="true", JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION="1")
    for key in ("PYTHONDONTWRITEBYTECODE", "CDK_OUTDIR", "CDK_CONTEXT_JSON"):
        env.pop(key, None)

    print(f"eks-llm-stack synth benchmark — {args.runs} interleaved rounds, {os.cpu_count()} cores, load {_load()}")
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        cases = _cases(Path(tmp), env, peers=not args.no_peers)
        for r in range(args.runs):
            for case in cases:
                t, peak = 0.0, 0
                for cmd, cwd, step_env in case.steps:
                    dt, m = _run(cmd, cwd, step_env)
                    t, peak = t + dt, max(peak, m)
                case.times.append(t)
                case.peaks.append(peak)
                case.resources = _resources(case.outdir)
            print(f"  round {r + 1}/{args.runs} done, load {_load()}", flush=True)

    med = {c.name: statistics.median(c.times) for c in cases}
    width = max(len(c.name) for c in cases)
    print(f"\n{'case':<{width}}  median s   (min - max)    peak MiB  resources")
    for c in cases:
        print(
            f"{c.name:<{width}}  {med[c.name]:7.2f}   ({min(c.times):.2f} - {max(c.times):.2f})"
            f"  {statistics.median(c.peaks):8.0f}  {c.resources:9d}"
        )

    def ratio(a: str, b: str) -> str:
        return f"{med[a] / med[b]:.2f}x" if a in med and b in med else "n/a"

    ts = "TS peer: cdk synth (tsc-compiled JS)"
    print("\nratios (medians of this run):")
    print(
        f"  make synth default / before (cdk synth + summary):  {ratio('make synth default', 'before: cdk synth + summary, default')}"
    )
    print(f"  make synth default / TS peer cdk synth:             {ratio('make synth default', ts)}")
    print(f"  make synth production.example / TS peer cdk synth:  {ratio('make synth production.example', ts)}")
    print(f"  before (cdk synth + summary) / TS peer cdk synth:   {ratio('before: cdk synth + summary, default', ts)}")
    print(f"  Python peer cdk synth / TS peer cdk synth:          {ratio('Python peer: cdk synth', ts)}")
    print(
        f"  Python peer direct / TS peer direct:                {ratio('Python peer: python app.py', 'TS peer: node build/app.js')}"
    )
    print(
        f"  make synth default / Python peer direct:            {ratio('make synth default', 'Python peer: python app.py')}"
    )
    print(
        f"  make synth default / eks-blueprints GPU cdk synth:  {ratio('make synth default', 'eks-blueprints GPU: cdk synth')}"
    )
    print(
        f"  50 models / 1 model:                                {ratio('50 models (production.example)', '1 model (production.example)')}"
    )
    if "50 models (production.example)" in med:
        per = (med["50 models (production.example)"] - med["1 model (production.example)"]) / 49 * 1000
        print(f"  cost of one more model:                             {per:.0f} ms")

    parts = _breakdown("default", env, args.runs)
    print("\nwhat remains, in-process (make synth default, fresh interpreter each run):")
    for k, v in parts.items():
        print(f"  {k:<28} median {statistics.median(x[0] for x in v):.2f} s  {int(v[0][1]):6d} jsii round trips")
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        one, fifty = (_breakdown(str(_models_profile(Path(tmp), n)), env, 1) for n in (1, 50))
    print("\njsii round trips per extra model (production.example, 50 models against 1):")
    for k in one:
        print(f"  {k:<28} {(fifty[k][0][1] - one[k][0][1]) / 49:6.1f}")
    total = sum(fifty[k][0][1] - one[k][0][1] for k in one) / 49
    print(f"  {'all':<28} {total:6.1f}")
    print(f"load at the end: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
