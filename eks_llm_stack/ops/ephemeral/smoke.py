"""``ephemeral smoke``: the benchmark harness's baseline scenario against the cluster's model."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
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


# -- EFA: NCCL must run over the aws-ofi-nccl plugin, not fall back to TCP sockets --------------------

#: NCCL's log lines (NCCL_DEBUG=INFO, which EFA pods set) when it loads the OFI network plugin, and
#: when it falls back to plain sockets.
_OFI_LINE = re.compile(r"NET/OFI|Using network (AWS )?Libfabric")
_SOCKET_LINE = re.compile(r"Using network Socket|NET/Socket : Using")


def nccl_transport_problem(log: str) -> str | None:
    """Why an NCCL log shows EFA unused (None when the OFI plugin carries the traffic)."""
    if _OFI_LINE.search(log) and not _SOCKET_LINE.search(log):
        return None
    seen = "it fell back to TCP sockets (NET/Socket)" if _SOCKET_LINE.search(log) else "no NCCL network line at all"
    return (
        f"NCCL did not load the aws-ofi-nccl network plugin: {seen}. EFA is reserved but unused -- run the "
        "EFA-capable vLLM image (eks_llm_stack.versions.VLLM_EFA_IMAGE) with NCCL_DEBUG=INFO"
    )


def leader_nccl_problem(kubeconfig: Path, model: str) -> str | None:
    """For a multi-node (EFA) model, :func:`nccl_transport_problem` of its leader pod's log; None for
    a model without a LeaderWorkerSet group (single node: no inter-node NCCL traffic)."""
    import json

    base = ["kubectl", "--kubeconfig", str(kubeconfig)]
    pods = subprocess.run(
        [*base, "get", "pods", "--all-namespaces", "-l",
         f"app.kubernetes.io/instance={model},eks-llm-stack.io/role=leader", "-o", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if pods.returncode != 0:
        return f"cannot list the pods of '{model}': {pods.stderr.strip()[:300]}"
    items = json.loads(pods.stdout or "{}").get("items", [])
    if not items:
        return None
    meta = items[0]["metadata"]
    log = subprocess.run(
        [*base, "logs", "--namespace", meta["namespace"], meta["name"], "-c", "vllm"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return nccl_transport_problem(log.stdout + log.stderr)


def smoke(
    aws: Aws,
    name: str,
    *,
    model: str,
    harness: BenchHarness,
    output_dir: Path,
    kubeconfig: Path | None = None,
    transport_check: Callable[[Path, str], str | None] = leader_nccl_problem,
) -> Path:
    """Run the baseline scenario; raise :class:`EphemeralError` if the harness reports errors, or if
    a multi-node model's NCCL runs without the OFI (EFA) plugin (``transport_check``)."""
    cluster = find_cluster(aws, name)
    if cluster is None:
        raise EphemeralError(f"no ephemeral cluster named '{name}' (see 'eks-llm-stack ephemeral list')")
    if kubeconfig is not None and kubeconfig.resolve().is_relative_to(output_dir.resolve()):
        # The report directory is uploaded as a CI artifact; a kubeconfig names the API endpoint.
        raise EphemeralError(f"--kubeconfig {kubeconfig} is inside the report directory {output_dir}; put it elsewhere")
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="eks-llm-stack-") as tmp:
        kubeconfig = kubeconfig or Path(tmp) / f"kubeconfig-{name}"
        write_kubeconfig(aws, cluster_name_for(name), kubeconfig)
        code = harness(kubeconfig=kubeconfig, model=model, output_dir=output_dir)
        # Still inside: the kubeconfig lives only as long as the temporary directory.
        problem = transport_check(kubeconfig, model) if code == 0 else None
    if code != 0:
        raise EphemeralError(
            f"smoke test of '{name}' failed: the baseline scenario against '{model}' exited {code} (report in {output_dir})"
        )
    if problem is not None:
        raise EphemeralError(f"smoke test of '{name}' failed: {problem}")
    return output_dir
