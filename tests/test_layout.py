"""The package layout: moved modules stay importable at their old paths for one release."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import eks_llm_stack
from eks_llm_stack._moved import MOVED

PACKAGE = Path(eks_llm_stack.__file__).parent


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_path_is_the_new_module(old: str) -> None:
    assert importlib.import_module(old) is importlib.import_module(MOVED[old])


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_path_has_a_stub_and_no_source(old: str) -> None:
    rel = Path(*old.split(".")[1:])
    assert (PACKAGE / rel.with_suffix(".pyi")).is_file()
    # A source file at the old path would shadow the alias and fork the module in two.
    assert not (PACKAGE / rel.with_suffix(".py")).exists()


def test_documented_old_imports_work() -> None:
    from eks_llm_stack import gates
    from eks_llm_stack.nag import nag_report  # type: ignore[attr-defined]
    from eks_llm_stack.quality import lint_template
    from eks_llm_stack.validate import validate_manifests

    assert (lint_template, nag_report, validate_manifests) == (
        gates.lint_template,
        gates.nag_report,
        gates.validate_manifests,
    )


def test_cli_runs_as_module_and_help_stays_light() -> None:
    code = (
        "import sys, runpy\n"
        "sys.argv = ['eks-llm-stack', '--help']\n"
        "try:\n    runpy.run_module('eks_llm_stack.cli', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "heavy = [m for m in ('aws_cdk', 'boto3', 'matplotlib', 'cdk8s') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "usage: eks-llm-stack" in out
    assert "HEAVY []" in out
