#!/usr/bin/env python3
"""What one more model costs, and what it would cost if its cdk8s chart were free.

    .venv/bin/python benchmarks/model_floor.py            # 3 interleaved rounds
    .venv/bin/python benchmarks/model_floor.py --runs 5

``production.example`` with its models replaced by 1 and by 50 copies of its first model (as
``benchmarks/synth.py`` builds them), each built, written to ``dist/manifests`` and synthesized in a fresh
interpreter, two ways:

Both build the profile once first, untimed, so that the timed build is warm alike (what a first build
loads into Node.js and Python is not counted in either).

* ``as is`` — what ``make synth`` does;
* ``chart free`` — each model's ``ModelChart`` replaced by its documents, rendered beforehand by the real
  chart in the same process and not timed: the Serving stack still creates every CloudFormation resource
  of the model (its ``KubernetesManifest`` with the same documents, the weights role, policy and Pod
  Identity association; the Data stack its API-key secret), cdk-nag still runs. The templates are the same.

The second figure is the floor of adding a model while its CloudFormation resources go through jsii:
what building a model's documents in Python (no cdk8s objects on the CloudFormation path) could reach at
best. Prints figures; asserts nothing.
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
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

_RUN = r"""
import gc, json, sys, time
from pathlib import Path
gc.disable()  # as app.py runs
from aws_cdk import App
import eks_llm_stack.stacks.serving as serving
from eks_llm_stack import synth

profile, mode, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
if mode == "as is":
    # The same warm-up as below (Node.js and Python load what a first build needs), so the two compare.
    synth.build(profile, app=App(outdir=str(out / "prep"), builtin_cloud_formation_validation=False))
else:
    # Render every model chart with the real ModelChart first (not timed), then build with charts that
    # only hand those documents over.
    real = serving.ModelChart
    rendered = {}

    def recording(scope, id, *, props):
        chart = real(scope, id, props=props)
        rendered[id] = list(chart.to_json())
        return chart

    serving.ModelChart = recording
    synth.build(profile, app=App(outdir=str(out / "prep"), builtin_cloud_formation_validation=False))

    class _Rendered:
        def __init__(self, scope, id, *, props):
            self.documents = rendered[id]

        def to_json(self):
            return self.documents

    serving.ModelChart = _Rendered
t0 = time.perf_counter()
app = App(outdir=str(out / "cdk.out"), builtin_cloud_formation_validation=False)
built = synth.build(profile, app=app)
synth.write_chart_manifests(built, out / "manifests")
app.synth()
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def _profile(tmp: Path, n: int) -> Path:
    data = yaml.safe_load((ROOT / "eks_llm_stack" / "profiles" / "production.example.yaml").read_text())
    first = data["models"][0]
    data["models"] = [{**copy.deepcopy(first), "name": f"{first['name']}-{i}"} for i in range(n)]
    path = tmp / f"models-{n}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _once(profile: Path, mode: str, env: dict[str, str]) -> float:
    with tempfile.TemporaryDirectory(prefix="model-floor-") as out:
        result = subprocess.run(
            [sys.executable, "-c", _RUN, str(profile), mode, out],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    seconds: float = json.loads(result.stdout.strip().splitlines()[-1])["seconds"]
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="interleaved rounds (default 3)")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"one more model: as is and with its cdk8s chart free — {args.runs} rounds, load {load}")
    times: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="model-floor-") as tmp:
        profiles = {n: _profile(Path(tmp), n) for n in (1, 50)}
        for r in range(args.runs):
            for mode in ("as is", "chart free"):
                for n, path in profiles.items():
                    times.setdefault((mode, n), []).append(_once(path, mode, env))
            print(f"  round {r + 1}/{args.runs} done", flush=True)
    print("\nbuild + dist/manifests + synth, in process (median s):")
    for mode in ("as is", "chart free"):
        one, fifty = (statistics.median(times[(mode, n)]) for n in (1, 50))
        per = (fifty - one) / 49 * 1000
        print(f"  {mode:<10}  1 model {one:5.2f}   50 models {fifty:5.2f}   {per:4.1f} ms per model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
