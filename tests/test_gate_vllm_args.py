"""Gate 2: every `vllm serve` command we can generate parses with vLLM 0.29.0's own argument list."""

from __future__ import annotations

import cdk8s
import pytest

from eks_llm_stack.catalog import MODELS
from eks_llm_stack.charts.vllm import VllmModel, VllmModelProps, WeightsFromClaim
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.gates.vllm_args import (
    check_manifests,
    check_serve_argv,
    load_serve_args,
    serve_argv,
    vllm_containers,
)
from eks_llm_stack.sizing import SizingRequest, size

GOOD = ["vllm", "serve", "/models/x", "--served-model-name", "x", "--port", "8000", "--dtype", "bfloat16"]


def _messages(argv: list[str]) -> list[str]:
    return [f"{p.field}: {p.message}" for p in check_serve_argv(argv)]


def test_the_judge_is_vllm_0_29_0s_own_parser_dump() -> None:
    spec = load_serve_args()
    assert spec.version == "0.29.0"
    # The options the multi-node launch relies on exist under these exact names.
    for name in ("--nnodes", "--node-rank", "--master-addr", "--master-port", "--headless"):
        assert name in spec.by_option
    assert "--worker-use-ray" not in spec.by_option


def test_a_good_command_passes() -> None:
    assert _messages(GOOD) == []
    # FlexibleArgumentParser reads underscores as dashes; --opt=value is one token.
    assert (
        _messages([*GOOD, "--max_model_len", "4096", "--gpu-memory-utilization=0.9", "--max-model-len", "auto"]) == []
    )


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--worker-use-ray"], "--worker-use-ray: is not an option of vllm serve 0.29.0"),
        (["--max-model"], "--max-model: is not an option"),  # no abbreviations
        (["--dtype", "bf16"], "--dtype: is not one of its choices"),
        (["--kv-cache-dtype", "fp4"], "--kv-cache-dtype: is not one of its choices"),
        (["--tensor-parallel-size", "two"], "--tensor-parallel-size: is not a valid int"),
        (["--gpu-memory-utilization", "high"], "--gpu-memory-utilization: is not a valid float"),
        (["--max-model-len", "4k4"], "--max-model-len: is not a whole number, -1 or auto"),
        (["--max-model-len"], "--max-model-len: expects a value and has none"),
        (["--max-model-len", "--enforce-eager"], "--max-model-len: expects a value and has none"),
        (["--enforce-eager=1"], "--enforce-eager: is a flag and takes no value"),
        (["--default-chat-template-kwargs", "{not json"], "--default-chat-template-kwargs: is not a valid loads"),
    ],
)
def test_each_kind_of_bad_argument_fails(extra: list[str], expected: str) -> None:
    messages = _messages([*GOOD, *extra])
    assert any(expected in m for m in messages), messages


def test_every_problem_is_reported_at_once_with_a_fix() -> None:
    problems = check_serve_argv(["vllm", "serve", "--dtype", "bf16", "--bogus", "--port", "x"], where="m")
    fields = [p.field for p in problems]
    assert fields == ["m: --dtype", "m: --bogus", "m: --port", "m: model"]
    assert all(p.fix for p in problems)
    assert "use one of auto, bfloat16" in problems[0].fix


def test_a_second_model_or_a_missing_one_fails() -> None:
    assert any("model: is missing" in m for m in _messages(["vllm", "serve", "--port", "8000"]))
    assert any("more than once" in m for m in _messages([*GOOD, "stray"]))


def test_serve_argv_reads_a_script_and_expands_the_group_variables() -> None:
    container = {"command": ["/bin/bash", "-c", 'set -eu\nexec vllm serve /m --node-rank "$LWS_WORKER_INDEX"\n']}
    assert serve_argv(container) == ["vllm", "serve", "/m", "--node-rank", "1"]
    assert serve_argv({"command": ["python3", "-m", "x"]}) is None


def test_a_vllm_container_that_runs_something_else_fails_the_gate() -> None:
    doc = {
        "kind": "Deployment",
        "metadata": {"name": "m"},
        "spec": {"template": {"spec": {"containers": [{"name": "vllm", "command": ["ray", "start"]}]}}},
    }
    problems = check_manifests({"chart": [doc]})
    assert [p.message for p in problems] == ["runs no `vllm serve` command"]


# -- what we generate -------------------------------------------------------------------------------


def test_every_model_of_every_profile_parses(any_synth) -> None:
    problems = check_manifests(any_synth.manifests, subject=f"{any_synth.profile.name}: ")
    assert [p.render() for p in problems] == []


def test_the_profiles_have_vllm_commands_to_check(production_synth) -> None:
    roles = {where.rsplit("/", 1)[-1] for where, _ in vllm_containers(production_synth.manifests)}
    # Single-node pods and both roles of a multi-node group are read.
    assert roles == {"pod", "leader", "worker"}


def _model_commands(props: VllmModelProps) -> dict[str, list[dict]]:
    chart = cdk8s.Chart(cdk8s.App(), "c")
    VllmModel(chart, "m", props=props)
    return {"chart": [d for d in chart.to_json() if d]}


@pytest.mark.parametrize("kv", ["auto", "fp8"])
def test_every_sizing_plan_of_the_catalog_parses(kv: str) -> None:
    checked = 0
    problems = []
    for name in sorted(MODELS):
        try:
            plan = size(SizingRequest(model=name, kv_cache_dtype=kv))
        except ConfigError:
            continue  # no plan for this model and request: nothing is generated
        pp = plan.pipeline_parallel_size
        props = VllmModelProps(
            name="m",
            namespace="llm",
            weights=WeightsFromClaim(claim_name="cache", path="models/m"),
            args=plan.vllm_args,
            tensor_parallel_size=plan.tensor_parallel_size,
            pipeline_parallel_size=pp,
            efa_interfaces=1 if pp > 1 else 0,
        )
        manifests = _model_commands(props)
        checked += len(vllm_containers(manifests))
        problems += check_manifests(manifests, subject=f"{name} (kv {kv}): ")
    assert checked >= len(MODELS) // 2
    assert [p.render() for p in problems] == []
