"""The storage chart: StorageClasses, static PV/PVC pairs and model-fetch Jobs."""

from __future__ import annotations

import cdk8s
import pytest

from eks_llm_stack.charts.storage import (
    EfsVolume,
    FsxVolume,
    ModelFetch,
    StorageChart,
    StorageChartProps,
    model_fetch_job,
)
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.gates.manifests import validate_manifests


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    chart = StorageChart(
        cdk8s.App(),
        "storage",
        props=StorageChartProps(
            namespace="llm-serving",
            fsx=FsxVolume(
                file_system_id="fs-0123",
                dns_name="fs-0123.fsx.us-east-1.amazonaws.com",
                mount_name="abcd",
                capacity_gib=2400,
            ),
            efs=EfsVolume(file_system_id="fs-0456", access_point_id="fsap-0789"),
            fetch_jobs=(
                ModelFetch(
                    name="qwen3-8b", claim_name="model-cache-efs", hf_repo="Qwen/Qwen3-8B", hf_revision="b968826"
                ),
                ModelFetch(name="llama", claim_name="model-cache-fsx", s3_uri="s3://team-models/llama-3.1-8b"),
            ),
        ),
    )
    return list(chart.to_json())


def _one(docs: list[dict], kind: str, name: str) -> dict:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def test_every_manifest_is_schema_valid(docs: list[dict]) -> None:
    assert validate_manifests(docs) == []


def test_fsx_volume_carries_mount_and_dns_name(docs: list[dict]) -> None:
    pv = _one(docs, "PersistentVolume", "llm-llm-serving-model-cache-fsx")
    assert pv["spec"]["csi"] == {
        "driver": "fsx.csi.aws.com",
        "volumeHandle": "fs-0123",
        "volumeAttributes": {"dnsname": "fs-0123.fsx.us-east-1.amazonaws.com", "mountname": "abcd"},
    }
    assert pv["spec"]["capacity"] == {"storage": "2400Gi"}


def test_efs_volume_mounts_the_access_point_with_iam(docs: list[dict]) -> None:
    pv = _one(docs, "PersistentVolume", "llm-llm-serving-model-cache-efs")
    assert pv["spec"]["csi"]["volumeHandle"] == "fs-0456::fsap-0789"
    assert pv["spec"]["mountOptions"] == ["tls", "iam"]


def test_volumes_are_retained_and_pre_bound(docs: list[dict]) -> None:
    for pv in (d for d in docs if d["kind"] == "PersistentVolume"):
        assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
        claim = _one(docs, "PersistentVolumeClaim", pv["spec"]["claimRef"]["name"])
        assert claim["metadata"]["namespace"] == "llm-serving" and claim["spec"]["volumeName"] == pv["metadata"]["name"]


def test_hf_fetch_reads_the_token_from_the_synced_secret(docs: list[dict]) -> None:
    job = _one(docs, "Job", "fetch-qwen3-8b")
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["HF_TOKEN"] == {
        "name": "HF_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "huggingface-token", "key": "token", "optional": True}},
    }


def test_fetch_is_idempotent_and_resumable(docs: list[dict]) -> None:
    job = _one(docs, "Job", "fetch-llama")
    script = job["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert "already fetched" in script and "aws s3 sync" in script and ".fetch-complete" in script
    assert job["spec"]["backoffLimit"] > 0


def test_fetch_runs_restricted(docs: list[dict]) -> None:
    pod = _one(docs, "Job", "fetch-llama")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False


def test_fetch_needs_exactly_one_source() -> None:
    with pytest.raises(ConfigError, match=r"s3_uri: give exactly one source.*\n.*fix: set s3_uri="):
        ModelFetch(name="x", claim_name="c", s3_uri="s3://abc/x", hf_repo="org/m")


def test_fetch_job_must_use_a_claim_of_the_chart() -> None:
    with pytest.raises(ConfigError, match=r"fetch_jobs\.claim_name: is not a claim of this chart.*\n.*fix: use one of"):
        StorageChartProps(
            namespace="ns",
            efs=EfsVolume(file_system_id="fs-1", access_point_id="fsap-1"),
            fetch_jobs=(ModelFetch(name="x", claim_name="other", hf_repo="org/m"),),
        )


def test_target_dir_cannot_escape_the_volume() -> None:
    with pytest.raises(ConfigError, match=r"target_dir: is not a relative directory"):
        model_fetch_job(ModelFetch(name="x", claim_name="c", hf_repo="org/m", target_dir="../etc"), "ns")
