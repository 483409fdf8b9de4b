"""dist/manifests is complete (every object the templates apply) and applies in its documented order."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from eks_llm_stack.charts.render import APPLY_STEPS, CRDS_STEP, NAMESPACES_STEP, PLATFORM_STEP, SERVING_STEP
from eks_llm_stack.gates.apply_order import (
    RELEASES_INDEX,
    helm_release_records,
    missing_objects,
    order_problems,
    read_releases,
    release_crds,
)
from eks_llm_stack.synth import write_chart_manifests, write_helm_releases

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def written(any_synth, tmp_path: Path) -> tuple[object, Path, Path]:
    """The synth's dist/manifests (a copy, so tests may break it) and its dist/helm-releases."""
    manifests = tmp_path / "manifests"
    shutil.copytree(any_synth.outdir / "manifests", manifests)
    releases = tmp_path / "helm-releases"
    write_helm_releases(any_synth.templates, releases)
    return any_synth, manifests, releases


def _missing(synth, manifests: Path, releases: Path) -> list[str]:
    return missing_objects(synth.templates, manifests, releases, assembly_dir=synth.outdir / "cdk.out")


def test_every_applied_object_and_release_is_written(written) -> None:
    synth, manifests, releases = written
    assert _missing(synth, manifests, releases) == []
    # The objects constructs apply themselves are among them (they were missing before).
    names = {p.name for p in manifests.rglob("*.yaml")}
    assert {"observability-namespaces.yaml", "observability.yaml", "external-secrets-operator.yaml"} <= names


def test_the_documented_order_applies(written) -> None:
    _, manifests, releases = written
    assert sorted(p.name for p in manifests.iterdir()) == [s for s in APPLY_STEPS if (manifests / s).is_dir()]
    assert order_problems(manifests, read_releases(releases)) == []


def test_an_incomplete_directory_fails(production_synth, tmp_path: Path) -> None:
    manifests = tmp_path / "manifests"
    shutil.copytree(production_synth.outdir / "manifests", manifests)
    releases = tmp_path / "helm-releases"
    write_helm_releases(production_synth.templates, releases)
    (manifests / NAMESPACES_STEP / "observability-namespaces.yaml").unlink()
    (manifests / CRDS_STEP / "lws-crds.yaml").unlink()
    index = [r for r in read_releases(releases) if r["release"] != "keda"]
    (releases / RELEASES_INDEX).write_text(json.dumps(index))
    problems = _missing(production_synth, manifests, releases)
    text = "\n".join(problems)
    assert "Namespace monitoring (v1) is applied by the templates but not in" in text
    assert "Namespace monitoring-node-agents" in text
    assert "CustomResourceDefinition leaderworkersets.leaderworkerset.x-k8s.io" in text
    assert "Helm release keda (chart keda 2.20.2, namespace keda)" in text
    assert all("-- fix:" in p for p in problems)
    assert len(problems) == 2 + 3 + 1  # two namespaces, the three LWS CRDs, one release


def test_a_wrongly_ordered_directory_fails(production_synth, tmp_path: Path) -> None:
    manifests = tmp_path / "manifests"
    shutil.copytree(production_synth.outdir / "manifests", manifests)
    releases = read_releases(_releases(production_synth, tmp_path))
    # The serving namespace after the objects in it, a NodePool before Karpenter, a model before LWS/KEDA.
    shutil.move(manifests / NAMESPACES_STEP / "namespaces.yaml", manifests / SERVING_STEP / "namespaces.yaml")
    shutil.move(manifests / PLATFORM_STEP / "gpu-pool-training.yaml", manifests / CRDS_STEP / "gpu-pool-training.yaml")
    shutil.move(manifests / SERVING_STEP / "model-llama-405b.yaml", manifests / CRDS_STEP / "model-llama-405b.yaml")
    (manifests / "stray.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: default}\n")
    text = "\n".join(order_problems(manifests, releases))
    assert (
        "30-platform/storage.yaml: PersistentVolumeClaim llm-serving/model-cache-efs: its namespace 'llm-serving'"
        in text
    )
    assert (
        "10-crds/gpu-pool-training.yaml: NodePool training: the CRD of NodePool (karpenter.sh) is not installed" in text
    )
    # (lws-crds.yaml sorts before it, so its LeaderWorkerSet is fine; its ExternalSecret is not)
    assert (
        "10-crds/model-llama-405b.yaml: ExternalSecret llm-serving/llama-405b-api-key: the CRD of ExternalSecret "
        "(external-secrets.io) is not installed" in text
    )
    assert "stray.yaml: not in any step directory" in text


def test_a_release_before_its_namespace_fails(production_synth, tmp_path: Path) -> None:
    manifests = tmp_path / "manifests"
    shutil.copytree(production_synth.outdir / "manifests", manifests)
    (manifests / NAMESPACES_STEP / "serving-controllers.yaml").unlink()
    text = "\n".join(order_problems(manifests, read_releases(_releases(production_synth, tmp_path))))
    assert "helm release keda: its namespace 'keda' is not created before it" in text
    assert "helm release lws: its namespace 'lws-system'" in text


def _releases(synth, tmp_path: Path) -> Path:
    out = tmp_path / "helm-releases"
    write_helm_releases(synth.templates, out)
    return out


def test_release_crds_come_from_the_vendored_charts() -> None:
    assert ("karpenter.sh", "NodePool") in release_crds("karpenter", "1.14.1", False)
    # --skip-crds: the Karpenter CRDs come from the CRD chart (10-crds), not from the release.
    assert ("karpenter.sh", "NodePool") not in release_crds("karpenter", "1.14.1", True)
    # KEDA's CRDs are templates (installed whatever --skip-crds says); prometheus-operator's a subchart's crds/.
    assert ("keda.sh", "ScaledObject") in release_crds("keda", "2.20.2", True)
    assert ("monitoring.coreos.com", "ServiceMonitor") in release_crds("kube-prometheus-stack", "88.2.0", False)
    assert ("external-secrets.io", "ExternalSecret") in release_crds("external-secrets", "2.9.0", False)
    # A subchart's crds/ folder counts (and is skipped with --skip-crds too).
    assert ("nfd.k8s-sigs.io", "NodeFeature") in release_crds("nvidia-device-plugin", "0.19.2", False)
    assert ("nfd.k8s-sigs.io", "NodeFeature") not in release_crds("nvidia-device-plugin", "0.19.2", True)


def test_helm_releases_are_the_templates_releases(production_synth, tmp_path: Path) -> None:
    out = _releases(production_synth, tmp_path)
    index = read_releases(out)
    records = [r for r in helm_release_records(production_synth.templates) if not r.is_asset]
    assert [(r["release"], r["chart"], r["version"]) for r in index] == [
        (r.release, r.chart, r.version) for r in records
    ]
    script = (out / "install.sh").read_text()
    assert script.count("helm upgrade --install") == len(records)
    karpenter = next(r for r in index if r["release"] == "karpenter")
    assert (
        karpenter["command"][4] == "oci://public.ecr.aws/karpenter/karpenter" and "--skip-crds" in karpenter["command"]
    )
    for r in index:
        assert (out / r["values"]).is_file()


def test_helm_commands_use_flags_helm_has(production_synth, tmp_path: Path) -> None:
    """The pinned helm (the kubectl layer's) judges the flags of the generated commands."""
    from eks_llm_stack.gates.helm import helm_binary

    help_text = subprocess.run(
        [str(helm_binary()), "upgrade", "--help"], capture_output=True, text=True, check=True
    ).stdout

    def known(flag: str) -> bool:
        return re.search(rf"\s{re.escape(flag)}[\s=]", help_text) is not None

    flags = {
        a for r in read_releases(_releases(production_synth, tmp_path)) for a in r["command"] if a.startswith("--")
    }
    assert {"--install", "--version", "--namespace", "--skip-crds", "--wait", "--values"} <= flags
    assert [f for f in flags if not known(f)] == []
    assert not known("--skip-crd")


def test_a_rewrite_removes_the_old_layout(default_synth, tmp_path: Path) -> None:
    out = tmp_path / "manifests"
    out.mkdir()
    (out / "namespaces.yaml").write_text("old flat layout\n")
    (out / PLATFORM_STEP).mkdir()
    (out / PLATFORM_STEP / "model-gone.yaml").write_text("a model removed from the profile\n")
    paths = write_chart_manifests(default_synth.built, out)
    assert sorted(out.rglob("*.yaml")) == sorted(paths)
    assert not (out / "namespaces.yaml").exists()


def test_gitops_doc_gives_the_steps_in_order() -> None:
    text = (ROOT / "docs" / "gitops.md").read_text()
    doc = text[text.index("## Apply order") :]
    positions = [
        doc.index(f"dist/manifests/{s}/") if s != "20-controllers" else doc.index("install.sh") for s in APPLY_STEPS
    ]
    assert positions == sorted(positions)
    assert "kubectl apply --server-side -f dist/manifests/10-crds/" in doc
