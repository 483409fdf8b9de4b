"""EFA does something: EFA pods run an image with libfabric/aws-ofi-nccl, and the smoke test proves it."""

from __future__ import annotations

import cdk8s

from eks_llm_stack import versions
from eks_llm_stack.charts.vllm import VllmModel, VllmModelProps, WeightsFromClaim
from eks_llm_stack.ops.ephemeral.smoke import nccl_transport_problem


def _pods(pp: int, efa: int) -> list[dict]:
    chart = cdk8s.Chart(cdk8s.App(), "c")
    props = VllmModelProps(
        name="m",
        namespace="llm",
        weights=WeightsFromClaim(claim_name="cache"),
        tensor_parallel_size=8,
        pipeline_parallel_size=pp,
        efa_interfaces=efa,
        instance_type="p5.48xlarge" if efa else None,
    )
    VllmModel(chart, "m", props=props)
    out = []
    for d in chart.to_json():
        spec = d.get("spec", {})
        if d["kind"] == "Deployment":
            out.append(spec["template"]["spec"])
        elif d["kind"] == "LeaderWorkerSet":
            lwt = spec["leaderWorkerTemplate"]
            out += [lwt["leaderTemplate"]["spec"], lwt["workerTemplate"]["spec"]]
    return out


def test_efa_pods_run_the_efa_capable_vllm_image_with_nccl_over_ofi() -> None:
    for pod in _pods(pp=2, efa=32):
        c = pod["containers"][0]
        assert c["image"] == versions.VLLM_EFA_IMAGE.uri
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert (env["FI_PROVIDER"], env["FI_EFA_USE_DEVICE_RDMA"], env["NCCL_DEBUG"]) == ("efa", "1", "INFO")
        assert "NET" in env["NCCL_DEBUG_SUBSYS"]
        # RDMA needs unlimited locked memory: the pod refuses to start with less.
        assert 'if [ "$(ulimit -l)" != unlimited ]' in c["command"][2] and "exit 1" in c["command"][2]


def test_pods_without_efa_keep_the_stock_image_and_no_efa_settings() -> None:
    (pod,) = _pods(pp=1, efa=0)
    c = pod["containers"][0]
    assert c["image"] == versions.VLLM_IMAGE.uri
    assert "FI_PROVIDER" not in {e["name"] for e in c["env"]}


def test_the_efa_image_is_aws_vllm_dlc_for_the_pinned_vllm_minor() -> None:
    assert versions.VLLM_EFA_IMAGE.repository == "public.ecr.aws/deep-learning-containers/vllm"
    minor = ".".join(versions.VLLM_IMAGE.tag.removeprefix("v").split(".")[:2])
    assert versions.VLLM_EFA_IMAGE.tag == f"{minor}-gpu-py312-ec2"


def test_the_nccl_log_verdict() -> None:
    ofi = "NCCL INFO NET/OFI Initializing aws-ofi-nccl 1.14.0\nNCCL INFO NET/OFI Selected provider is efa\n"
    assert nccl_transport_problem(ofi + "NCCL INFO Using network Libfabric\n") is None
    tcp = nccl_transport_problem("NCCL INFO NET/Socket : Using [0]eth0:10.0.1.5<0>\n")
    assert tcp is not None and "fell back to TCP" in tcp and "VLLM_EFA_IMAGE" in tcp
    assert "no NCCL network line" in (nccl_transport_problem("vLLM started\n") or "")
