"""Model-fetch Jobs run where the EFS / FSx mounts work: nodes that carry the storage-client group."""

from __future__ import annotations

from typing import Any

from eks_llm_stack.charts.storage import ModelFetch, model_fetch_job
from eks_llm_stack.conventions import POOL_LABEL, SYSTEM_NODE_LABEL


def _docs(synth: Any, kind: str) -> list[dict[str, Any]]:
    return [d for docs in synth.manifests.values() for d in docs if d.get("kind") == kind]


def _client_group_tags(synth: Any) -> set[tuple[str, str]]:
    """Tags on the Data stack's storage-client security group (the group EFS / FSx admit)."""
    out = set()
    for r in synth.template("Data")["Resources"].values():
        if r["Type"] == "AWS::EC2::SecurityGroup" and "Nodes that mount" in r["Properties"].get("GroupDescription", ""):
            out |= {(t["Key"], t["Value"]) for t in r["Properties"].get("Tags", []) if isinstance(t["Value"], str)}
    return out


def test_every_fetch_job_runs_on_nodes_that_carry_the_storage_client_group(production_synth) -> None:
    jobs = [j for j in _docs(production_synth, "Job") if j["metadata"]["name"].startswith("fetch-")]
    assert jobs
    node_classes = {c["metadata"]["name"]: c for c in _docs(production_synth, "EC2NodeClass")}
    pools = {p["metadata"]["name"]: p for p in _docs(production_synth, "NodePool")}
    client_tags = _client_group_tags(production_synth)
    assert client_tags, "no storage-client security group in the Data stack"
    for job in jobs:
        spec = job["spec"]["template"]["spec"]
        assert SYSTEM_NODE_LABEL not in spec.get("nodeSelector", {}), job["metadata"]["name"]
        terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        (expr,) = [e for t in terms for e in t["matchExpressions"] if e["key"] == POOL_LABEL]
        assert expr["operator"] == "In" and expr["values"]
        for name in expr["values"]:
            node_class = node_classes[pools[name]["spec"]["template"]["spec"]["nodeClassRef"]["name"]]
            selected = {
                kv for term in node_class["spec"]["securityGroupSelectorTerms"] for kv in term.get("tags", {}).items()
            }
            assert selected & client_tags, f"pool {name} does not select the storage-client group"
        # It tolerates the GPU taint of those nodes, and asks for no GPU.
        assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])
        assert "nvidia.com/gpu" not in spec["containers"][0]["resources"].get("limits", {})


def test_without_pools_a_fetch_job_keeps_the_system_nodes() -> None:
    job = model_fetch_job(ModelFetch(name="m", claim_name="c", s3_uri="s3://bucket/models/m"), "ns")
    assert job["spec"]["template"]["spec"]["nodeSelector"] == {SYSTEM_NODE_LABEL: "true"}
    job = model_fetch_job(ModelFetch(name="m", claim_name="c", s3_uri="s3://bucket/models/m", pools=("gpu",)), "ns")
    assert "nodeSelector" not in job["spec"]["template"]["spec"]
