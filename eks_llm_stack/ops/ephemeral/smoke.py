"""``ephemeral smoke``: the benchmark harness's baseline scenario against the cluster's model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Protocol

from ..aws import Aws
from .clusters import find_cluster
from .kubeconfig import write_kubeconfig
from .names import EphemeralError, cluster_name_for


class BenchHarness(Protocol):
    """Runs the benchmark harness's baseline scenario against a model; returns its exit code."""

    def __call__(self, *, kubeconfig: Path, model: str, output_dir: Path) -> int: ...


def bench_argv(*, url: str, model: str, output_dir: Path) -> list[str]:
    """The ``eks-llm-stack bench run`` command line of the smoke test (baseline scenario)."""
    return [sys.executable, "-m", "eks_llm_stack.cli", "bench", "run", "--scenario", "baseline",
            "--url", url, "--model", model, "--out", str(output_dir), "--no-progress"]  # fmt: skip


def smoke_verdict(returncode: int, output_dir: Path) -> int:
    """The harness's exit code, or 3 when it finished but some requests failed (summary.json ``errors``)."""
    import json

    if returncode != 0:
        return returncode
    summary = output_dir / "summary.json"
    if not summary.is_file():
        return 3
    levels = json.loads(summary.read_text()).get("levels", [])
    return 3 if any(level.get("errors") for level in levels) or not levels else 0


def bench_via_cli(*, kubeconfig: Path, model: str, output_dir: Path) -> int:
    """The baseline scenario through ``eks-llm-stack bench run``, over a ``kubectl port-forward``."""
    port = 18080
    forward = subprocess.Popen(
        ["kubectl", "--kubeconfig", str(kubeconfig), "port-forward", "--namespace", _model_namespace(kubeconfig, model),
         f"service/{model}", f"{port}:8000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        argv = bench_argv(url=f"http://127.0.0.1:{port}", model=model, output_dir=output_dir)
        return smoke_verdict(subprocess.run(argv, check=False).returncode, output_dir)
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def _model_namespace(kubeconfig: Path, model: str) -> str:
    import json

    out = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "get", "services", "--all-namespaces",
         "--field-selector", f"metadata.name={model}", "-o", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    items = json.loads(out.stdout or "{}").get("items", []) if out.returncode == 0 else []
    if not items:
        raise EphemeralError(f"no Service named '{model}' in the cluster; is the Serving stack deployed?")
    return str(items[0]["metadata"]["namespace"])


def smoke(
    aws: Aws,
    name: str,
    *,
    model: str,
    harness: BenchHarness,
    output_dir: Path,
    kubeconfig: Path | None = None,
) -> Path:
    """Run the baseline scenario; raise :class:`EphemeralError` if the harness reports errors."""
    cluster = find_cluster(aws, name)
    if cluster is None:
        raise EphemeralError(f"no ephemeral cluster named '{name}' (see 'eks-llm-stack ephemeral list')")
    kubeconfig = kubeconfig or output_dir / f"kubeconfig-{name}"
    write_kubeconfig(aws, cluster_name_for(name), kubeconfig)
    output_dir.mkdir(parents=True, exist_ok=True)
    code = harness(kubeconfig=kubeconfig, model=model, output_dir=output_dir)
    if code != 0:
        raise EphemeralError(
            f"smoke test of '{name}' failed: the baseline scenario against '{model}' exited {code} (report in {output_dir})"
        )
    return output_dir
