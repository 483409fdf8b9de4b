#!/usr/bin/env python3
"""dist/manifests writer benchmark: the block YAML writer against PyYAML, on the 50-model documents.

    .venv/bin/python benchmarks/yaml_writer.py              # 5 interleaved rounds, 50 models
    .venv/bin/python benchmarks/yaml_writer.py --models 1 --runs 9
    .venv/bin/python benchmarks/yaml_writer.py --profile default  # a shipped profile as it is

Builds ``production.example`` with its models replaced by N copies of its first model (as
``benchmarks/synth.py`` does), or takes a shipped profile, then, in one process, alternating round by round:

* ``write_chart_manifests`` (resolve + write every ``dist/manifests`` file) with today's
  ``dump_documents`` and with the previous one (PyYAML's emitter with remembered scalar analyses);
* ``dump_documents`` alone on the same documents; PyYAML's plain ``yaml.safe_dump_all`` (the bytes
  both must equal); libyaml's ``CSafeDumper`` (faster still, but see how many files keep their bytes).

Every round starts with empty scalar caches, as a synth process does. Prints figures and whether
each writer's output equals ``safe_dump_all``; asserts nothing (speed targets live here, not in tests).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from eks_llm_stack import synth  # noqa: E402
from eks_llm_stack.charts import render, yaml_writer  # noqa: E402
from eks_llm_stack.config.profile import validate_profile  # noqa: E402

Docs = list[dict[str, Any]]


def pyyaml(docs: Docs) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)


def previous(docs: Docs) -> str:
    """``dump_documents`` before the block writer: PyYAML with its scalar analyses remembered."""
    return yaml.dump_all(docs, Dumper=render._Dumper, sort_keys=False, default_flow_style=False)


def libyaml(docs: Docs) -> str:
    return yaml.dump_all(docs, Dumper=yaml.CSafeDumper, sort_keys=False, default_flow_style=False)


def cold() -> None:
    """Forget every remembered scalar, as a new synth process starts."""
    render._Dumper._analyses.clear()
    yaml_writer.clear_caches()


def build(models: int, profile: str | None = None) -> synth.Built:
    if profile is not None:
        return synth.build(profile)
    data = yaml.safe_load((ROOT / "config" / "production.example.yaml").read_text())
    first = data["models"][0]
    data["models"] = [{**copy.deepcopy(first), "name": f"{first['name']}-{i}"} for i in range(models)]
    return synth.build(validate_profile(data, f"production.example x{models} models"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", help="a shipped profile instead of production.example with --models models")
    args = parser.parse_args()

    built = build(args.models, args.profile)
    batches: list[Docs] = []
    real_dump = synth.dump_documents

    def recording(docs: Docs) -> str:
        batches.append(docs)
        return real_dump(docs)

    out = Path(tempfile.mkdtemp(prefix="bench-yaml-"))
    synth.dump_documents = recording  # type: ignore[assignment]
    synth.write_chart_manifests(built, out / "warm-up")
    synth.dump_documents = real_dump  # type: ignore[assignment]
    size = sum(len(real_dump(b)) for b in batches)
    subject = args.profile or f"production.example with {args.models} models"
    print(f"{subject}: {len(batches)} files, {sum(map(len, batches))} documents, {size / 1e6:.2f} MB of YAML")

    dumps: dict[str, Callable[[Docs], str]] = {
        "dump_documents (block writer)": render.dump_documents,
        "previous dump_documents (PyYAML)": previous,
        "yaml.safe_dump_all": pyyaml,
        "libyaml CSafeDumper": libyaml,
    }
    manifests = {"block writer": render.dump_documents, "previous (PyYAML)": previous}
    dump_times: dict[str, list[float]] = {name: [] for name in dumps}
    write_times: dict[str, list[float]] = {name: [] for name in manifests}
    for _ in range(args.runs):
        for name, dump in dumps.items():
            cold()
            start = time.perf_counter()
            for docs in batches:
                dump(docs)
            dump_times[name].append(time.perf_counter() - start)
        for name, dump in manifests.items():
            cold()
            synth.dump_documents = dump  # type: ignore[assignment]
            start = time.perf_counter()
            synth.write_chart_manifests(built, out / "m")
            write_times[name].append(time.perf_counter() - start)
            synth.dump_documents = real_dump  # type: ignore[assignment]

    expected = [pyyaml(b) for b in batches]
    load = os.getloadavg()
    print(f"median of {args.runs} interleaved rounds, cold caches; load average {load[0]:.2f} {load[1]:.2f}")
    base = statistics.median(dump_times["previous dump_documents (PyYAML)"])
    print("\nwriting the documents (no resolve, no files):")
    for name, dump in dumps.items():
        med = statistics.median(dump_times[name])
        same = sum(dump(b) == e for b, e in zip(batches, expected, strict=True))
        print(f"  {name:34s} {med * 1000:7.1f} ms  {base / med:5.1f}x  same bytes: {same}/{len(batches)} files")
    warm = []
    for _ in range(args.runs):
        start = time.perf_counter()
        for docs in batches:
            render.dump_documents(docs)
        warm.append(time.perf_counter() - start)
    print(f"  {'dump_documents, caches warm':34s} {statistics.median(warm) * 1000:7.1f} ms")
    print("\nwrite_chart_manifests (resolve + write dist/manifests):")
    before = statistics.median(write_times["previous (PyYAML)"])
    for name, times in write_times.items():
        med = statistics.median(times)
        print(f"  {name:34s} {med * 1000:7.1f} ms  {before / med:5.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
