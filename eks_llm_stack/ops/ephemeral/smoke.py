"""``ephemeral smoke``: the benchmark harness's baseline scenario against the cluster's model."""

from __future__ import annotations

import os
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


def bench_argv(*, url: str, model: str, output_dir: Path, api_key_env: str | None = None) -> list[str]:
    """The ``eks-llm-stack bench run`` command line of the smoke test (baseline scenario); with
    ``api_key_env``, the harness sends the key that variable holds."""
    argv = [sys.executable, "-m", "eks_llm_stack.cli", "bench", "run", "--scenario", "baseline",
            "--url", url, "--model", model, "--out", str(output_dir), "--no-progress"]  # fmt: skip
    return [*argv, "--api-key-env", api_key_env] if api_key_env else argv


#: Environment variable the smoke test hands the model's API key in (never on a command line).
API_KEY_ENV = "EKS_LLM_STACK_SMOKE_API_KEY"


def model_api_key(kubeconfig: Path, namespace: str, model: str) -> str | None:
    """The first key of the model's ``<model>-api-key`` Secret, or None (the simulator, ``api_key: false``)."""
    import base64

    out = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "get", "secret", f"{model}-api-key", "--namespace", namespace,
         "-o", "jsonpath={.data.api-key}", "--ignore-not-found"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode != 0 or not out.stdout.strip():
        return None
    lines = base64.b64decode(out.stdout.strip()).decode().splitlines()
    return lines[0].strip() if lines and lines[0].strip() else None


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
    namespace = _model_namespace(kubeconfig, model)
    key = model_api_key(kubeconfig, namespace, model)
    forward = subprocess.Popen(
        ["kubectl", "--kubeconfig", str(kubeconfig), "port-forward", "--namespace", namespace,
         f"service/{model}", f"{port}:8000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        argv = bench_argv(
            url=f"http://127.0.0.1:{port}", model=model, output_dir=output_dir, api_key_env=API_KEY_ENV if key else None
        )
        env = {**os.environ, API_KEY_ENV: key} if key else None
        return smoke_verdict(subprocess.run(argv, check=False, env=env).returncode, output_dir)
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
