"""The benchmark Job's run options (SLOs, error limit, prices, datasets, sessions, sweeps), its
merge step for several pods, and its NetworkPolicy under a default-deny.

What the Job renders is judged by real parts: its arguments by the harness's own parser and
planner (``bench run``'s), its shell by /bin/sh running it against the simulator, its manifests
by the Kubernetes schemas, and its NetworkPolicy by the NetworkPolicy evaluator
(:mod:`eks_llm_stack.gates.network_policy`) together with the platform's default-deny.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cdk8s
import pytest

from eks_llm_stack.charts.benchmark_job import BenchmarkJobChart, BenchmarkJobProps, PvcResults, S3Results
from eks_llm_stack.charts.network_policies import (
    API_CLIENT_LABEL,
    MODEL_POD_LABELS,
    ModelNetworkPolicy,
    ModelNetworkPolicyProps,
    ServingNamespacePolicies,
    ServingNamespacePoliciesProps,
)
from eks_llm_stack.charts.render import chart_documents
from eks_llm_stack.cli import build_parser
from eks_llm_stack.cli.bench import plan_from_args
from eks_llm_stack.conventions import BENCH_BARRIER_PORT
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.gates.manifests import validate_manifests
from eks_llm_stack.gates.network_policy import External, Pod, can_connect
from tests.test_bench_merge import _free_port
from tests.test_bench_robustness import MODEL, simulator

ROOT = Path(__file__).resolve().parents[1]
URL = "http://llama.models.svc.cluster.local:8000"


def props(**kw: Any) -> BenchmarkJobProps:
    base: dict[str, Any] = {
        "name": "llama-sweep", "url": URL, "model": "llama", "concurrency": (4, 8),
        "results": PvcResults(claim_name="bench-results"),
    }  # fmt: skip
    return BenchmarkJobProps(**{**base, **kw})


def render(p: BenchmarkJobProps) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in chart_documents(BenchmarkJobChart(cdk8s.App(), p.name, props=p))}


def container(p: BenchmarkJobProps) -> dict[str, Any]:
    return render(p)["Job"]["spec"]["template"]["spec"]["containers"][0]


def plan_of(p: BenchmarkJobProps, data: Path | None = None, index: int = 0) -> tuple[Any, dict[str, Any]]:
    """What `bench run` makes of the pod's arguments (data claim paths pointed at ``data``)."""
    args = [a.replace("$(HARNESS_INDEX)", str(index)) for a in container(p)["args"]]
    if data is not None:
        args = [a.replace("/data/", f"{data}/") for a in args]
    parsed = build_parser().parse_args(args)
    return parsed, plan_from_args(parsed)


def test_slos_error_limit_prices_and_gamma_arrivals_reach_the_harness() -> None:
    p = props(
        concurrency=(), rate=4.0, arrival="gamma", burstiness=0.5, duration_s=60.0, prompt_tokens="uniform:64:512",
        slo_ttft_ms=200.0, slo_itl_ms=20.0, slo_e2e_ms=4000.0, max_error_rate_percent=1.0, hourly_usd=1.21,
        spot_hourly_usd=0.45, capacity_block_hourly_usd=0.9, shared_prefix=(8, 16), prefix_tokens=1024,
    )  # fmt: skip
    args, plan = plan_of(p)
    assert (args.slo_ttft_ms, args.slo_itl_ms, args.slo_e2e_ms, args.max_error_rate) == (200.0, 20.0, 4000.0, 1.0)
    assert plan["prices"] == {"on_demand": 1.21, "spot": 0.45, "capacity_block": 0.9}
    (level,) = plan["levels"]
    assert (level.rate, level.arrival, level.burstiness, level.prompt.describe()) == (
        4.0,
        "gamma",
        0.5,
        "uniform:64:512",
    )
    assert len(plan["prompts"]) == 128 and {x.group for x in plan["prompts"]} == set(range(8))


def test_dataset_files_are_read_from_the_data_claim(tmp_path: Path) -> None:
    (tmp_path / "sharegpt").mkdir()
    chats = [
        {"conversations": [{"from": "human", "value": "q1"}, {"from": "gpt", "value": "a b"}, {"from": "human", "value": "q2"}]}
    ] * 3  # fmt: skip
    (tmp_path / "sharegpt" / "chats.json").write_text(json.dumps(chats))
    (tmp_path / "t.jsonl").write_text('{"timestamp_s": 0, "prompt": "x", "output_tokens": 2}\n')
    ds = props(scenario="dataset", concurrency=(), dataset="sharegpt/chats.json", data_claim="model-cache-efs")
    objs = render(ds)
    assert validate_manifests(objs.values()) == []
    pod = objs["Job"]["spec"]["template"]["spec"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "model-cache-efs", "readOnly": True}} in pod[
        "volumes"
    ]
    assert {"name": "data", "mountPath": "/data", "readOnly": True} in pod["containers"][0]["volumeMounts"]
    args, plan = plan_of(ds, tmp_path)
    assert args.dataset == tmp_path / "sharegpt" / "chats.json" and [x.text for x in plan["prompts"]] == ["q1"] * 3
    _, plan = plan_of(props(concurrency=(), trace="t.jsonl", data_claim="d"), tmp_path)
    assert plan["levels"][0].trace_offsets_s == (0.0,)
    chat = props(sessions="sharegpt/chats.json", data_claim="d", think_time="exp:2", max_turns=1)
    _, plan = plan_of(chat, tmp_path)
    assert [len(x.turns) for x in plan["sessions"]] == [1, 1, 1]
    assert plan["levels"][0].think_time.describe() == "exp:2"


def test_synthetic_sessions_with_several_harnesses_split_users_and_sessions() -> None:
    p = props(synthetic_sessions=(9, 4), think_time="uniform:1:3", harnesses=2)
    ids = []
    for i in range(2):
        _, plan = plan_of(p, index=i)
        ids += [x.id for x in plan["sessions"]]
        assert [lv.concurrency for lv in plan["levels"]] == [2, 4]
    assert sorted(ids) == list(range(9))


def test_an_sla_sweep_reaches_the_harness() -> None:
    p = props(concurrency=(), sla_sweep="concurrency", sweep_range=(1, 64), requests=50, slo_attainment_percent=95.0)
    args, plan = plan_of(p)
    kind, bounds, _ = plan["sweep"]
    assert (kind, bounds, args.slo_attainment) == ("concurrency", (1.0, 64.0), 95.0)


def test_bad_options_are_reported_together_with_their_fix() -> None:
    with pytest.raises(ConfigError) as err:
        props(
            concurrency=(), sla_sweep="concurrency", sweep_range=(8, 2), harnesses=2, think_time="soon",
            dataset="/abs/chats.json", max_error_rate_percent=150.0, slo_ttft_ms=-1.0, burstiness=0.5,
            prompt_tokens="bogus",
        )  # fmt: skip
    text = str(err.value)
    for needle in (
        "sweep_range: must be (LO, HI) with 0 < LO < HI",
        "sla_sweep/harnesses: an SLA sweep picks each next level from its own results",
        "think_time/max_turns: only apply to chat sessions",
        "data_claim: is needed: dataset is a file on it",
        "dataset: must be a relative path inside the data claim",
        "max_error_rate_percent: must be a percentage between 0 and 100",
        "slo_ttft_ms: must be positive",
        "burstiness: needs arrival='gamma'",
        "prompt_tokens: is not a length specification",
    ):
        assert needle in text, needle
    assert "fix: set data_claim to the PersistentVolumeClaim" in text and "harnesses=1" in text
    with pytest.raises(ConfigError) as err:
        props(synthetic_sessions=(4, 2), think_time="exp:-3", requests=10)
    assert "think_time: needs finite seconds >= 0" in str(err.value) and "no requests/warmup" in str(err.value)


def test_several_harnesses_on_a_claim_merge_in_pod_0() -> None:
    p = props(harnesses=2)
    c = container(p)
    assert c["command"][:2] == ["/bin/sh", "-c"] and c["command"][3] == "eks-llm-stack"
    script = c["command"][2]
    assert (
        "bench merge --wait 1800 /results/llama-sweep/part-0 /results/llama-sweep/part-1 "
        "--out /results/llama-sweep/merged" in script
    )
    # With an API key, the key is read first, then the same steps.
    keyed = container(props(harnesses=2, api_key_secret="llama-api-key"))
    assert keyed["command"][2].startswith("read -r BENCH_API_KEY < /etc/eks-llm-stack/api-key/api-key; ")
    assert "bench merge --wait" in keyed["command"][2] and keyed["args"][-2:] == ["--api-key-env", "BENCH_API_KEY"]
    # S3 parts are on no shared volume: no merge step there (docs give the follow-up commands).
    s3 = props(harnesses=2, results=S3Results(uri="s3://ci-bench/runs"), service_account_name="bench")
    assert container(s3)["command"] == ["eks-llm-stack"]


def test_the_rendered_merge_step_runs_and_merges(tmp_path: Path) -> None:
    # The pods' own shell and arguments, as the kubelet would expand them, run by /bin/sh here:
    # /results is a temporary folder, the URL the simulator's, pod 0's name 127.0.0.1.
    port = _free_port()
    with simulator(ttft_ms=2, itl_ms=1) as (_, url):
        p = props(url=url, harnesses=2, requests=8, output_tokens="4", model=MODEL, network_policy=False)
        c = container(p)
        script = c["command"][2].replace("/results", str(tmp_path))
        procs = []
        for i in range(2):
            args = [
                a.replace("$(HARNESS_INDEX)", str(i))
                .replace("/results", str(tmp_path))
                .replace(
                    f"llama-sweep-0.llama-sweep.benchmarks.svc.cluster.local:{BENCH_BARRIER_PORT}", f"127.0.0.1:{port}"
                )
                for a in c["args"]
            ]
            env = {**os.environ, "HARNESS_INDEX": str(i), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
            procs.append(subprocess.Popen(["/bin/sh", "-c", script, "eks-llm-stack", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))  # fmt: skip
        for proc in procs:
            assert proc.wait(timeout=180) == 0, proc.communicate()
    merged = json.loads((tmp_path / "llama-sweep" / "merged" / "summary.json").read_text())
    assert [(lv["concurrency"], lv["parts"], lv["completed"]) for lv in merged["levels"]] == [(4, 2, 8), (8, 2, 8)]
    assert (tmp_path / "llama-sweep" / "merged" / "report.html").exists()


def test_merge_wait_names_the_parts_that_never_finished(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from eks_llm_stack.cli import main

    (tmp_path / "part-0").mkdir()
    (tmp_path / "part-0" / "summary.json").write_text(json.dumps({"levels": [], "metadata": {"finished_at": None}}))
    argv = ["bench", "merge", "--wait", "0.3", str(tmp_path / "part-0"), str(tmp_path / "part-1"), "--out", str(tmp_path / "m")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'part-0'}: holds no finished run after 0.3 s" in err
    assert f"{tmp_path / 'part-1'}: holds no finished run" in err and "kubectl logs" in err


# -- the NetworkPolicy, under the platform's default-deny ----------------------------------------

CLIENT_NS = {API_CLIENT_LABEL: "true"}


def _world(p: BenchmarkJobProps) -> tuple[list[dict[str, Any]], Pod, Pod, Pod]:
    """The Job's manifests, the platform's default-deny in its namespace and the model's own
    policy; a harness pod, another harness pod, a model pod."""
    app = cdk8s.App()
    docs = chart_documents(BenchmarkJobChart(app, p.name, props=p))
    deny = cdk8s.Chart(app, "Deny")
    ServingNamespacePolicies(
        deny, "Bench", props=ServingNamespacePoliciesProps(namespace=p.namespace, fetch_jobs=False)
    )
    model = cdk8s.Chart(app, "Model")
    ModelNetworkPolicy(
        model,
        "Llama",
        props=ModelNetworkPolicyProps(name="llama", namespace="models", pod_labels=dict(MODEL_POD_LABELS)),
    )
    manifests = [*docs, *chart_documents(deny), *chart_documents(model)]
    labels = render(p)["Job"]["spec"]["template"]["metadata"]["labels"]
    harness = Pod(p.namespace, labels, CLIENT_NS)
    other = Pod(p.namespace, {**labels}, CLIENT_NS, ports={"barrier": BENCH_BARRIER_PORT})
    model_pod = Pod("models", {**MODEL_POD_LABELS, "app.kubernetes.io/instance": "llama"})
    return manifests, harness, other, model_pod


def test_harness_pods_reach_each_other_on_the_barrier_port_and_the_model_under_default_deny() -> None:
    p = props(harnesses=3, concurrency=(3, 9))
    manifests, harness, other, model_pod = _world(p)
    assert can_connect(manifests, harness, other, BENCH_BARRIER_PORT)
    assert can_connect(manifests, harness, model_pod, 8000)
    # Nothing more: other ports between harnesses, other pods of the namespace, other ports of the model.
    assert not can_connect(manifests, harness, other, BENCH_BARRIER_PORT + 1)
    stranger = Pod(p.namespace, {"app": "x"}, CLIENT_NS)
    assert not can_connect(manifests, stranger, other, BENCH_BARRIER_PORT)
    assert not can_connect(manifests, harness, stranger, BENCH_BARRIER_PORT)
    assert not can_connect(manifests, harness, model_pod, 9000)
    # The model admits API clients only from namespaces labelled as such.
    assert not can_connect(manifests, Pod(p.namespace, harness.labels), model_pod, 8000)


def test_without_the_jobs_policy_the_default_deny_blocks_the_barrier() -> None:
    # The gate on bad input: the same world without the Job's own policy cannot run a barrier.
    manifests, harness, other, _ = _world(props(harnesses=3, concurrency=(3, 9), network_policy=False))
    assert not can_connect(manifests, harness, other, BENCH_BARRIER_PORT)
    assert not can_connect(manifests, other, harness, BENCH_BARRIER_PORT)


def test_one_harness_needs_no_ingress_and_s3_results_get_https_and_pod_identity() -> None:
    manifests, harness, other, model_pod = _world(props())
    assert not can_connect(manifests, other, harness, BENCH_BARRIER_PORT)
    assert can_connect(manifests, harness, model_pod, 8000)
    s3 = props(results=S3Results(uri="s3://ci-bench/runs"), service_account_name="bench")
    docs = chart_documents(BenchmarkJobChart(cdk8s.App(), s3.name, props=s3))
    harness = Pod(s3.namespace, render(s3)["Job"]["spec"]["template"]["metadata"]["labels"], CLIENT_NS)
    assert can_connect(docs, harness, External("52.95.0.1"), 443)
    assert can_connect(docs, harness, External("169.254.170.23"), 80)
    pvc_docs = chart_documents(BenchmarkJobChart(cdk8s.App(), "p", props=props()))
    assert not can_connect(pvc_docs, harness, External("52.95.0.1"), 443)


def test_the_policy_follows_the_urls_namespace_and_port_or_asks_for_it() -> None:
    spec = render(props(url="http://qwen.serving.svc:9000"))["NetworkPolicy"]["spec"]
    (model_rule,) = [r for r in spec["egress"] if "namespaceSelector" in r["to"][0] and r["ports"][0]["port"] != 53]
    assert model_rule["to"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "serving"}
    assert model_rule["ports"] == [{"protocol": "TCP", "port": 9000}]
    with pytest.raises(ConfigError) as err:
        props(url="http://10.0.0.5:8000")
    assert "model_namespace: cannot be read from url" in str(err.value) and "network_policy=False" in str(err.value)
    assert props(url="http://10.0.0.5:8000", model_namespace="models").policy_namespace == "models"
