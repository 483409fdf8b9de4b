"""The vLLM model chart: GPU placement, probes, shm, secrets, spot-safe shutdown, multi-node, schemas."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import replace
from typing import Any

import aiohttp
import cdk8s
import pytest

from eks_llm_stack import versions
from eks_llm_stack.bench.simulator import SimulatorConfig, running
from eks_llm_stack.charts.monitoring import DEFAULT_VLLM_POD_LABELS
from eks_llm_stack.charts.vllm import (
    PORT,
    PORT_NAME,
    ModelIngress,
    VllmChart,
    VllmChartProps,
    VllmModelProps,
    WeightsFromClaim,
    WeightsFromHub,
    WeightsFromS3,
    drain_script,
    node_share,
)
from eks_llm_stack.conventions import EFA_RESOURCE, GPU_RESOURCE, GPU_TAINT_KEY, POOL_LABEL
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.gates.manifests import validate_manifests

NS = "llm-serving"
SINGLE = VllmModelProps(
    name="llama",
    namespace=NS,
    weights=WeightsFromClaim(claim_name="model-cache-efs", path="models/llama", wait_for_fetch=True),
    args=("--tensor-parallel-size", "4", "--max-model-len", "8192"),
    tensor_parallel_size=4,
    pools=("inference",),
    instance_type="g6e.12xlarge",
)
MULTI = VllmModelProps(
    name="big",
    namespace=NS,
    weights=WeightsFromClaim(claim_name="model-cache-fsx", path="models/llama-405b"),
    tensor_parallel_size=8,
    pipeline_parallel_size=2,
    efa_interfaces=32,
    pools=("training",),
    instance_type="p5.48xlarge",
)


def render(props: VllmModelProps) -> list[dict[str, Any]]:
    return list(VllmChart(cdk8s.App(), "c", props=VllmChartProps(model=props, external_namespace=True)).to_json())


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind]
    return found


def pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return of_kind(docs, "Deployment")["spec"]["template"]["spec"]


def server(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return pod(docs)["containers"][0]


@pytest.fixture(scope="module")
def single() -> list[dict[str, Any]]:
    return render(SINGLE)


@pytest.fixture(scope="module")
def multi() -> list[dict[str, Any]]:
    return render(MULTI)


# -- schemas ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "props",
    [
        SINGLE,
        MULTI,
        replace(SINGLE, weights=WeightsFromS3(uri="s3://bucket/llama")),
        replace(SINGLE, weights=WeightsFromHub(repo="Qwen/Qwen3-8B", revision="main")),
        replace(
            SINGLE,
            ingress=ModelIngress(
                certificate_arn="arn:aws:acm:us-east-1:123456789012:certificate/x", allowed_cidrs=("10.0.0.0/16",)
            ),
        ),
        replace(
            SINGLE,
            ingress=ModelIngress(
                kind="nlb", certificate_arn="arn:aws:acm:us-east-1:1:certificate/x", allowed_cidrs=("10.0.0.0/16",)
            ),
        ),
        VllmModelProps(name="sim", namespace=NS, engine="simulator"),
    ],
    ids=["single", "multi", "s3", "hub", "alb", "nlb", "simulator"],
)
def test_every_manifest_validates_against_core_schemas_and_crds(props: VllmModelProps) -> None:
    assert validate_manifests(render(props)) == []


# -- single node --------------------------------------------------------------------------------


def test_gpu_request_equals_tensor_parallel_size(single) -> None:
    res = server(single)["resources"]
    assert res["limits"][GPU_RESOURCE] == 4
    assert res["requests"][GPU_RESOURCE] == 4


def test_tolerates_the_gpu_taint_and_selects_pool_and_instance_type(single) -> None:
    spec = pod(single)
    assert {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    exprs = terms[0]["matchExpressions"]
    assert {"key": POOL_LABEL, "operator": "In", "values": ["inference"]} in exprs
    assert {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["g6e.12xlarge"]} in exprs


def test_several_pools_are_all_allowed() -> None:
    spec = pod(render(replace(SINGLE, pools=("inference-spot", "inference-on-demand"))))
    exprs = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0][
        "matchExpressions"
    ]
    assert {"key": POOL_LABEL, "operator": "In", "values": ["inference-spot", "inference-on-demand"]} in exprs


def test_cpu_and_memory_requests_come_from_the_instance_share(single) -> None:
    # g6e.12xlarge: 48 vCPUs, 384 GiB, 4 GPUs -- TP 4 takes the whole node less the reserve.
    cpu, memory = node_share(vcpus=48, memory_gib=384, gpus=4, gpu_count=4)
    res = server(single)["resources"]
    assert res["requests"]["cpu"] == f"{cpu:g}"
    assert res["requests"]["memory"] == f"{memory}Gi" == res["limits"]["memory"]
    assert 40 <= cpu < 48 and 330 <= memory < 384


def test_half_the_gpus_get_half_the_node() -> None:
    whole = node_share(vcpus=48, memory_gib=384, gpus=4, gpu_count=4)
    half = node_share(vcpus=48, memory_gib=384, gpus=2, gpu_count=4)
    assert half[1] == pytest.approx(whole[1] / 2, abs=1)


def test_shm_is_a_memory_backed_emptydir_sized_for_tp(single) -> None:
    shm = next(v for v in pod(single)["volumes"] if v["name"] == "shm")
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "8Gi"}
    assert {"name": "shm", "mountPath": "/dev/shm"} in server(single)["volumeMounts"]


def test_single_gpu_gets_a_small_shm() -> None:
    docs = render(replace(SINGLE, tensor_parallel_size=1, instance_type="g6e.xlarge"))
    shm = next(v for v in pod(docs)["volumes"] if v["name"] == "shm")
    assert shm["emptyDir"]["sizeLimit"] == "1Gi"


def test_hf_token_comes_from_the_synced_secret_never_a_literal(single) -> None:
    env = {e["name"]: e for e in server(single)["env"]}
    token = env["HF_TOKEN"]
    assert "value" not in token
    assert token["valueFrom"]["secretKeyRef"] == {"name": "huggingface-token", "key": "token", "optional": True}


def test_no_token_env_without_a_secret() -> None:
    env = {e["name"] for e in server(render(replace(SINGLE, hf_token_secret=None)))["env"]}
    assert "HF_TOKEN" not in env


def test_cache_claim_is_mounted_read_only(single) -> None:
    vol = next(v for v in pod(single)["volumes"] if v["name"] == "models")
    assert vol["persistentVolumeClaim"] == {"claimName": "model-cache-efs", "readOnly": True}
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in server(single)["volumeMounts"]


def test_waits_for_the_fetch_job_marker_before_serving(single) -> None:
    (init,) = pod(single)["initContainers"]
    assert init["name"] == "wait-for-weights"
    assert "/models/models/llama/.fetch-complete" in init["command"][2]


def test_serves_the_cache_path_under_the_model_name(single) -> None:
    cmd = server(single)["command"]
    assert cmd[:3] == ["vllm", "serve", "/models/models/llama"]
    assert cmd[cmd.index("--served-model-name") + 1] == "llama"
    assert cmd[-4:] == ["--tensor-parallel-size", "4", "--max-model-len", "8192"]


def test_s3_weights_are_synced_by_an_init_container() -> None:
    spec = pod(render(replace(SINGLE, weights=WeightsFromS3(uri="s3://bucket/llama", size_gib=40))))
    (init,) = spec["initContainers"]
    assert init["image"] == versions.AWS_CLI_IMAGE.uri
    assert "aws s3 sync s3://bucket/llama /models" in init["command"][2]
    assert next(v for v in spec["volumes"] if v["name"] == "models")["emptyDir"] == {"sizeLimit": "40Gi"}
    assert spec["serviceAccountName"] == "llama"


def test_hub_weights_are_downloaded_by_vllm_at_the_pinned_revision() -> None:
    c = server(render(replace(SINGLE, weights=WeightsFromHub(repo="Qwen/Qwen3-8B", revision="abc123"))))
    assert c["command"][2] == "Qwen/Qwen3-8B"
    assert c["command"][c["command"].index("--revision") + 1] == "abc123"
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["HF_HUB_CACHE"] == "/models" and "HF_HUB_OFFLINE" not in env


def test_local_weights_keep_vllm_offline(single) -> None:
    assert {"name": "HF_HUB_OFFLINE", "value": "1"} in server(single)["env"]


def test_startup_probe_allows_the_whole_model_load(single) -> None:
    probe = server(single)["startupProbe"]
    assert probe["httpGet"] == {"path": "/health", "port": PORT_NAME}
    assert probe["periodSeconds"] * probe["failureThreshold"] >= 1800


def test_readiness_on_health_and_liveness_only_after_startup(single) -> None:
    c = server(single)
    assert c["readinessProbe"]["httpGet"]["path"] == "/health"
    # Liveness starts once the startup probe passed; it must not have its own delay that a slow load outruns.
    assert "initialDelaySeconds" not in c["livenessProbe"]
    assert c["livenessProbe"]["periodSeconds"] * c["livenessProbe"]["failureThreshold"] >= 60


def test_grace_period_fits_the_spot_notice_and_prestop_drains(single) -> None:
    spec = pod(single)
    assert spec["terminationGracePeriodSeconds"] <= 120
    cmd = server(single)["lifecycle"]["preStop"]["exec"]["command"]
    assert cmd[:2] == ["python3", "-c"]
    assert all(name in cmd[2] for name in ("vllm:num_requests_running", "vllm:num_requests_waiting"))


def test_prestop_budget_leaves_time_for_vllm_to_exit(single) -> None:
    script = server(single)["lifecycle"]["preStop"]["exec"]["command"][2]
    # 110 s of grace: 5 s propagation + at most 95 s draining + 10 s for SIGTERM.
    assert "time.monotonic() + 95" in script


def test_pdb_allows_one_pod_down_and_selects_the_model(single) -> None:
    pdb = of_kind(single, "PodDisruptionBudget")["spec"]
    assert pdb["maxUnavailable"] == 1
    assert pdb["selector"]["matchLabels"] == {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": "llama"}


def test_replicas_spread_over_zones_and_capacity_types(single) -> None:
    keys = {c["topologyKey"]: c for c in pod(single)["topologySpreadConstraints"]}
    assert set(keys) == {"topology.kubernetes.io/zone", "karpenter.sh/capacity-type"}
    assert all(c["maxSkew"] == 1 and c["whenUnsatisfiable"] == "ScheduleAnyway" for c in keys.values())


def test_service_is_clusterip_on_8000(single) -> None:
    svc = of_kind(single, "Service")["spec"]
    assert svc["type"] == "ClusterIP"
    assert svc["ports"] == [{"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"}]


def test_pods_carry_the_labels_the_vllm_pod_monitor_selects(single) -> None:
    labels = of_kind(single, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert DEFAULT_VLLM_POD_LABELS.items() <= labels.items()
    assert {"name": "http", "containerPort": 8000, "protocol": "TCP"} in server(single)["ports"]


def test_runs_restricted_non_root_with_a_read_only_root(single) -> None:
    spec = pod(single)
    sc = server(single)["securityContext"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert spec["automountServiceAccountToken"] is False
    assert {"name": "HOME", "value": "/tmp"} in server(single)["env"]


def test_rollout_keeps_serving_while_the_new_pod_loads(single) -> None:
    strategy = of_kind(single, "Deployment")["spec"]["strategy"]
    assert strategy["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_autoscaled_model_leaves_replicas_to_the_autoscaler() -> None:
    assert "replicas" not in of_kind(render(replace(SINGLE, replicas=None)), "Deployment")["spec"]


def test_pinned_image_is_used(single) -> None:
    assert server(single)["image"] == f"vllm/vllm-openai:{versions.VLLM_IMAGE.tag}"


# -- multi node ---------------------------------------------------------------------------------


def lws(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return of_kind(docs, "LeaderWorkerSet")["spec"]


def test_multi_node_is_a_leaderworkerset_of_pp_nodes(multi) -> None:
    spec = lws(multi)
    assert of_kind(multi, "LeaderWorkerSet")["metadata"]["name"] == "big-group"
    assert spec["leaderWorkerTemplate"]["size"] == 2
    assert spec["leaderWorkerTemplate"]["restartPolicy"] == "RecreateGroupOnPodRestart"
    assert not [d for d in multi if d["kind"] == "Deployment"]


def test_every_pod_of_a_group_requests_all_gpus_and_efa(multi) -> None:
    t = lws(multi)["leaderWorkerTemplate"]
    for role in ("leaderTemplate", "workerTemplate"):
        res = t[role]["spec"]["containers"][0]["resources"]["limits"]
        assert res[GPU_RESOURCE] == 8
        assert res[EFA_RESOURCE] == 32


def test_nccl_uses_efa(multi) -> None:
    env = {
        e["name"]: e.get("value")
        for e in lws(multi)["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["env"]
    }
    assert env["FI_PROVIDER"] == "efa"
    assert env["FI_EFA_USE_DEVICE_RDMA"] == "1"


def _group_argv(multi, role: str, index: str) -> list[str]:
    from eks_llm_stack.gates.vllm_args import serve_argv

    container = lws(multi)["leaderWorkerTemplate"][f"{role}Template"]["spec"]["containers"][0]
    env = {"LWS_GROUP_SIZE": "2", "LWS_WORKER_INDEX": index, "LWS_LEADER_ADDRESS": "m-group-0.m-group.ns"}
    argv = serve_argv(container, env)
    assert argv is not None
    return argv


def _opt(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_a_group_uses_vllms_native_multinode_launch_not_ray(multi) -> None:
    from eks_llm_stack.conventions import VLLM_MULTINODE_PORT

    for role, index in (("leader", "0"), ("worker", "1")):
        argv = _group_argv(multi, role, index)
        script = lws(multi)["leaderWorkerTemplate"][f"{role}Template"]["spec"]["containers"][0]["command"][2]
        # The vLLM 0.29.0 image has no Ray: nothing may start it or ask for its executor.
        assert "ray" not in script.split() and "--distributed-executor-backend ray" not in script
        assert _opt(argv, "--distributed-executor-backend") == "mp"
        assert (_opt(argv, "--nnodes"), _opt(argv, "--node-rank")) == ("2", index)
        assert _opt(argv, "--master-addr") == "m-group-0.m-group.ns"
        assert _opt(argv, "--master-port") == str(VLLM_MULTINODE_PORT)
        # The shell expands the LWS variables, quoted.
        assert '--nnodes "$LWS_GROUP_SIZE" --node-rank "$LWS_WORKER_INDEX"' in script


def test_only_workers_run_headless(multi) -> None:
    assert "--headless" not in _group_argv(multi, "leader", "0")
    assert "--headless" in _group_argv(multi, "worker", "1")


def test_only_leaders_serve_and_are_behind_the_service(multi) -> None:
    t = lws(multi)["leaderWorkerTemplate"]
    assert "ports" in t["leaderTemplate"]["spec"]["containers"][0]
    assert "ports" not in t["workerTemplate"]["spec"]["containers"][0]
    assert of_kind(multi, "Service")["spec"]["selector"]["eks-llm-stack.io/role"] == "leader"


# -- simulator ----------------------------------------------------------------------------------


def test_simulator_runs_on_system_nodes_without_gpus() -> None:
    docs = render(VllmModelProps(name="sim", namespace=NS, engine="simulator"))
    spec = pod(docs)
    assert spec["nodeSelector"] == {"eks-llm-stack.io/system": "true"}
    assert GPU_RESOURCE not in spec["containers"][0]["resources"]["limits"]
    container = spec["containers"][0]
    assert container["command"][:2] == ["eks-llm-stack", "simulate"] and container["args"] == ["--model", "sim"]
    assert container["image"] == versions.BENCH_HARNESS_IMAGE.uri


def test_simulator_installs_nothing_at_start() -> None:
    # The image carries the simulator; a pod that pip-installs at start depends on PyPI at run time.
    container = pod(render(VllmModelProps(name="sim", namespace=NS, engine="simulator")))["containers"][0]
    assert "pip" not in " ".join([*container["command"], *container.get("args", [])])


# -- the preStop program, run for real against the simulator --------------------------------------


async def _drain_while_streaming(stream_tokens: int) -> tuple[float, float]:
    """Start a streaming request, run the preStop program; return (drain seconds, stream seconds)."""
    config = SimulatorConfig(model="m", ttft_ms=10, itl_ms=20)
    async with running(config) as (_, url), aiohttp.ClientSession() as session:
        port = int(url.rsplit(":", 1)[1].split("/")[0])

        async def stream() -> float:
            t0 = time.monotonic()
            body = {"model": "m", "prompt": "hi", "max_tokens": stream_tokens, "stream": True}
            async with session.post(f"{url}/v1/completions", json=body) as resp:
                await resp.read()
            return time.monotonic() - t0

        task = asyncio.create_task(stream())
        await asyncio.sleep(0.1)
        t0 = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", drain_script(budget=20, propagation=0, port=port)
        )
        await proc.wait()
        drained = time.monotonic() - t0
        streamed = await task
    return drained, streamed


def test_prestop_waits_for_the_in_flight_stream_to_finish() -> None:
    drained, streamed = asyncio.run(_drain_while_streaming(stream_tokens=100))
    # The stream takes ~2 s; the program returns only after it, and well before its 20 s budget.
    assert streamed > 1.5
    assert drained >= streamed - 0.3
    assert drained < 10


def test_prestop_returns_at_once_when_idle() -> None:
    async def go() -> float:
        async with running(SimulatorConfig(model="m")) as (_, url):
            port = int(url.rsplit(":", 1)[1].split("/")[0])
            t0 = time.monotonic()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", drain_script(budget=20, propagation=0, port=port)
            )
            await proc.wait()
            return time.monotonic() - t0

    assert asyncio.run(go()) < 3


# -- bad input ----------------------------------------------------------------------------------


def test_tp_larger_than_the_instance_gpus_is_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"tensor_parallel_size: is larger than the 1 GPUs of g6e.xlarge.*\n.*fix: use at most 1"
    ):
        replace(SINGLE, instance_type="g6e.xlarge", tensor_parallel_size=4)


def test_multi_node_without_efa_is_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"efa_interfaces: a multi-node model needs EFA.*\n.*fix: run it on an EFA pool"
    ):
        replace(MULTI, efa_interfaces=0)


def test_vllm_without_weights_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"weights: is required for engine vllm.*\n.*fix: pass WeightsFromClaim"):
        VllmModelProps(name="x", namespace=NS)


def test_bad_names_and_paths_are_all_reported_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        VllmModelProps(
            name="Llama_3",
            namespace=NS,
            weights=WeightsFromClaim(claim_name="cache", path="../etc"),
            termination_grace_seconds=5,
        )
    text = str(err.value)
    assert "3 problems" in text
    assert "name: is not a valid Kubernetes name" in text
    assert "weights.path: is not a relative directory" in text
    assert "termination_grace_seconds: is outside 10-3600" in text


def test_a_model_chart_without_its_namespace_in_the_app_names_the_chart_to_add() -> None:
    app = cdk8s.App()
    chart = VllmChart(
        app, "m", props=VllmChartProps(model=VllmModelProps(name="sim", namespace="team-x", engine="simulator"))
    )
    with pytest.raises(RuntimeError, match=r"no Namespace 'team-x' in this cdk8s app.*fix: add NamespacesChart"):
        chart.to_json()
    from eks_llm_stack.charts import NamespacesChart, NamespacesChartProps, NamespaceSpec

    NamespacesChart(app, "namespaces", props=NamespacesChartProps(namespaces=(NamespaceSpec(name="team-x"),)))
    assert any(doc["kind"] == "Deployment" for doc in chart.to_json())


def test_the_namespace_check_is_one_per_app_and_names_every_chart_missing_its_namespace() -> None:
    # cdk8s validates the whole app at each chart's to_json(): one check per app keeps that linear.
    from eks_llm_stack.charts.vllm import _NAMESPACE_CHECKS

    app = cdk8s.App()
    charts = [
        VllmChart(
            app, f"m{i}", props=VllmChartProps(model=VllmModelProps(name=f"sim{i}", namespace=ns, engine="simulator"))
        )
        for i, ns in enumerate(("team-x", "team-y", "team-x"))
    ]
    assert _NAMESPACE_CHECKS[app]._expected == [("m0", "team-x"), ("m1", "team-y"), ("m2", "team-x")]
    with pytest.raises(RuntimeError) as err:
        charts[0].to_json()
    text = str(err.value)
    for chart, ns in (("m0", "team-x"), ("m1", "team-y"), ("m2", "team-x")):
        assert f"model chart '{chart}': no Namespace '{ns}'" in text
    from eks_llm_stack.charts import NamespacesChart, NamespacesChartProps, NamespaceSpec

    NamespacesChart(app, "namespaces", props=NamespacesChartProps(namespaces=(NamespaceSpec(name="team-x"),)))
    with pytest.raises(RuntimeError) as err:
        charts[0].to_json()
    assert "model chart 'm1': no Namespace 'team-y'" in str(err.value)
    assert "'m0'" not in str(err.value) and "'m2'" not in str(err.value)
