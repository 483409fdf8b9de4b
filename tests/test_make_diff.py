"""`make diff` and `cdk ls` must neither fail on a non-option nor overwrite dist/manifests."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CDK_CONTEXT, ROOT

CDK = ROOT / "node_modules" / ".bin" / "cdk"


def _make_recipe(target: str) -> list[str]:
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = lines.index(next(x for x in lines if x.startswith(f"{target}:")))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def test_a_synth_for_ls_or_diff_writes_into_its_own_assembly_not_dist(tmp_path: Path) -> None:
    # What `cdk ls` / `cdk diff -c profile=ci-ephemeral` do: run app.py with an outdir and the context,
    # no manifests_dir (cdk.json has no default any more). A process of its own, as the CLI starts it
    # (the jsii runtime of this test process would not see a changed environment).
    import os

    assert "manifests_dir" not in CDK_CONTEXT
    env = {
        **os.environ,
        "CDK_OUTDIR": str(tmp_path / "cdk.out"),
        "CDK_CONTEXT_JSON": json.dumps({**CDK_CONTEXT, "profile": "ci-ephemeral", "nag": "false"}),
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (tmp_path / "dist").exists()
    assert (tmp_path / "cdk.out" / "manifests" / "00-namespaces" / "namespaces.yaml").is_file()


def test_make_synth_chooses_dist_manifests() -> None:
    # make synth runs the app itself (no CDK CLI round trip), with the summary in the same process.
    synth = next(x for x in _make_recipe("synth") if "app.py" in x)
    assert synth.startswith("@$(PY) app.py ")
    assert "-c manifests_dir=dist/manifests" in synth and "--summary" in synth
    assert not any("$(CDK)" in x or "eks-llm-stack summary" in x for x in _make_recipe("synth"))


@pytest.mark.slow
def test_make_diff_passes_only_options_cdk_diff_has() -> None:
    diff = next(x for x in _make_recipe("diff") if "$(CDK) diff" in x)
    options = [w.split("=")[0] for w in diff.split() if w.startswith("-")]
    assert options  # -c at least
    env_path = f"{Path(sys.executable).parent}:/usr/bin:/bin"
    help_text = subprocess.run(
        [str(CDK), "diff", "--help"], capture_output=True, text=True, timeout=120, env={"PATH": env_path}
    ).stdout
    known = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", help_text))
    assert "--context" in known
    assert [o for o in options if o not in known] == []
    assert "--all" not in known  # what the old recipe passed


def test_make_diff_stops_with_a_clear_message_without_credentials(tmp_path: Path) -> None:
    check = next(x for x in _make_recipe("diff") if "get_credentials" in x)
    code = re.search(r'-c "(.*?)"', check)
    assert code is not None
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AWS_CONFIG_FILE": str(tmp_path / "none")}
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "none")
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    result = subprocess.run([sys.executable, "-c", code.group(1)], env=env, capture_output=True, timeout=60)
    assert result.returncode == 1
    message = " ".join(_make_recipe("diff"))
    assert "needs AWS credentials" in message and "make synth" in message
