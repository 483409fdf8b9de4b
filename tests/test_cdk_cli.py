"""The real `cdk synth` through the pinned CLI: a bad profile is one readable message, no traceback.

These are the only tests that start the CDK CLI (a few seconds each); everything else
synthesizes in-process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CDK = ROOT / "node_modules" / ".bin" / "cdk"


def _cdk(args: list[str], cwd: Path, outdir: Path) -> subprocess.CompletedProcess[str]:
    assert CDK.exists(), "the pinned aws-cdk CLI is not installed: run `make test` (it runs `npm ci`)"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "CI": "true"}
    env.pop("AWS_PROFILE", None)
    return subprocess.run(
        [str(CDK), "synth", "--quiet", "--ci", "-o", str(outdir), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_bad_profile_fails_synth_with_one_message_listing_both_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("prefix: llm\nnetwrk: {}\ncluster:\n  endpoint:\n    public_cidrs: [10.1.2.300/32]\n")
    result = _cdk(["-c", f"profile={bad}", "-c", f"manifests_dir={tmp_path / 'm'}"], ROOT, tmp_path / "out")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "2 problems" in output
    assert "netwrk: unknown key" in output and "did you mean 'network'?" in output
    assert "'10.1.2.300/32' is not a CIDR block" in output
    assert "Traceback" not in output
    assert "jsii" not in output.lower()


@pytest.mark.slow
def test_default_profile_synthesizes_offline_without_credentials(tmp_path: Path) -> None:
    env_out = tmp_path / "out"
    manifests = tmp_path / "manifests"
    os.environ.pop("AWS_ACCESS_KEY_ID", None)
    result = _cdk(["-c", f"manifests_dir={manifests}"], ROOT, env_out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in env_out.glob("*.template.json")) == [
        "Llm-Data.template.json",
        "Llm-Network.template.json",
        "Llm-Platform.template.json",
        "Llm-Serving.template.json",
    ]
    assert (manifests / "00-namespaces" / "namespaces.yaml").is_file()
    # The controllers' Helm releases beside the manifests.
    assert (tmp_path / "helm-releases" / "install.sh").is_file()
    # No context lookups happened: nothing was written to cdk.context.json.
    assert not (ROOT / "cdk.context.json").exists()
