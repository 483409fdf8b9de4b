"""The benchmark Job chart: a valid, restricted, bounded Job running the real harness command."""

from __future__ import annotations

from typing import Any

import cdk8s
import pytest

from eks_llm_stack import __version__, versions
from eks_llm_stack.charts.benchmark_job import BenchmarkJobChart, BenchmarkJobProps, PvcResults, S3Results
from eks_llm_stack.charts.render import chart_documents
from eks_llm_stack.cli import build_parser
from eks_llm_stack.cli.bench import plan_from_args
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.gates.manifests import validate_manifests

URL = "http://llama.models.svc.cluster.local:8000"


def props(**kw: Any) -> BenchmarkJobProps:
    base: dict[str, Any] = {
        "name": "llama-sweep", "url": URL, "model": "llama", "concurrency": (1, 5, 10),
        "results": PvcResults(claim_name="bench-results"),
    }  # fmt: skip
    return BenchmarkJobProps(**{**base, **kw})


def render(p: BenchmarkJobProps, app: cdk8s.App | None = None) -> dict[str, dict[str, Any]]:
    docs = chart_documents(BenchmarkJobChart(app or cdk8s.App(), p.name, props=p))
    return {d["kind"]: d for d in docs}


def pod(objs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return objs["Job"]["spec"]["template"]["spec"]


S3 = props(results=S3Results(uri="s3://ci-bench/runs"), service_account_name="bench", create_service_account=True)


def test_pvc_job_validates_against_the_kubernetes_schemas() -> None:
    assert validate_manifests(render(props()).values()) == []


def test_s3_job_and_its_service_account_validate() -> None:
    objs = render(S3)
    assert sorted(objs) == ["Job", "NetworkPolicy", "ServiceAccount"]
    assert validate_manifests(objs.values()) == []


def test_container_is_restricted() -> None:
    sc = pod(render(props()))["containers"][0]["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and sc["allowPrivilegeEscalation"] is False
    assert (sc["capabilities"], sc["seccompProfile"]) == ({"drop": ["ALL"]}, {"type": "RuntimeDefault"})


def test_pod_runs_as_non_root_with_runtime_default_seccomp() -> None:
    sc = pod(render(props()))["securityContext"]
    assert (sc["runAsNonRoot"], sc["runAsUser"] != 0, sc["seccompProfile"]) == (True, True, {"type": "RuntimeDefault"})


def test_job_runs_once_and_is_bounded_in_time() -> None:
    spec = render(props())["Job"]["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"], pod(render(props()))["restartPolicy"]) == (
        0, 4 * 3600, "Never",
    )  # fmt: skip


def test_image_is_the_pinned_harness_image() -> None:
    assert pod(render(props()))["containers"][0]["image"] == versions.BENCH_HARNESS_IMAGE.uri


def test_harness_image_tag_follows_the_package_version() -> None:
    assert versions.BENCH_HARNESS_IMAGE.tag == __version__


def test_pvc_results_go_to_a_folder_named_after_the_job() -> None:
    p = pod(render(props()))
    assert p["volumes"][0] == {"name": "results", "persistentVolumeClaim": {"claimName": "bench-results"}}
    assert p["containers"][0]["args"][-2:] == ["--out", "/results/llama-sweep"]


def test_s3_results_upload_with_the_pod_identity_service_account() -> None:
    p = pod(render(S3))
    assert p["serviceAccountName"] == "bench"
    assert p["containers"][0]["args"][-2:] == ["--upload-s3", "s3://ci-bench/runs/llama-sweep"]


def test_the_job_command_is_accepted_by_the_harness() -> None:
    p = props(rate=5.0, concurrency=(), duration_s=60.0, warmup=5, output_tokens="uniform:32:256", hourly_usd=1.21)
    args = build_parser().parse_args(pod(render(p))["containers"][0]["args"])
    level = plan_from_args(args)["levels"][0]
    assert (level.rate, level.duration_s, level.warmup, level.output.describe()) == (5.0, 60.0, 5, "uniform:32:256")


def test_a_ramp_reaches_the_harness_and_is_refused_for_an_open_loop() -> None:
    args = build_parser().parse_args(pod(render(props(concurrency=(128,), ramp_s=1.5)))["containers"][0]["args"])
    assert args.ramp == 1.5
    with pytest.raises(ConfigError) as err:
        props(rate=5.0, concurrency=(), duration_s=60.0, ramp_s=1.0)
    text = str(err.value)
    assert "ramp_s: must be 0-3600 seconds and only applies to a closed loop" in text
    assert "fix: e.g. ramp_s=1.5" in text


def test_two_jobs_coexist_in_one_app() -> None:
    app = cdk8s.App()
    a, b = render(props(name="run-a"), app), render(props(name="run-b"), app)
    assert a["Job"]["metadata"]["name"] != b["Job"]["metadata"]["name"]


def test_bad_props_are_reported_together() -> None:
    with pytest.raises(ConfigError, match=r"(?s)name: is not a valid Kubernetes name.*fix:.*exactly one of scenario"):
        props(name="Bad_Name", rate=2.0, duration_s=10.0)


def test_s3_results_need_a_service_account() -> None:
    with pytest.raises(ConfigError, match=r"(?s)service_account_name: is required to upload to S3.*fix: name"):
        props(results=S3Results(uri="s3://b/p"))


def test_open_loop_needs_a_bound() -> None:
    with pytest.raises(ConfigError, match=r"(?s)rate: an open loop needs a bound.*fix: set duration_s"):
        props(concurrency=(), rate=3.0)


DIGEST = "sha256:" + "ab" * 32


def test_image_is_pulled_by_digest_when_one_is_given() -> None:
    image = pod(render(props(image_digest=DIGEST)))["containers"][0]["image"]
    assert image == f"{versions.BENCH_HARNESS_IMAGE.repository}:{versions.BENCH_HARNESS_IMAGE.tag}@{DIGEST}"


def test_a_malformed_digest_is_a_clear_error() -> None:
    with pytest.raises(ConfigError) as err:
        props(image_digest="sha256:1234")
    assert "image_digest" in str(err.value) and "64 lower-case hex digits" in str(err.value)


def test_image_pin_rejects_a_malformed_digest() -> None:
    with pytest.raises(ConfigError) as err:
        versions.ImagePin(repository="r", tag="t", digest="latest")
    assert "digest" in str(err.value) and "sha256:" in str(err.value)
    assert versions.ImagePin(repository="r", tag="t", digest=DIGEST).uri == f"r:t@{DIGEST}"


def test_several_harnesses_run_as_an_indexed_job_behind_a_barrier() -> None:
    objs = render(props(harnesses=3, concurrency=(3, 30), rate=None))
    assert validate_manifests(objs.values()) == []
    spec = objs["Job"]["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 3, 3)
    svc = objs["Service"]["spec"]
    assert svc["clusterIP"] == "None" and svc["publishNotReadyAddresses"] is True
    p = pod(objs)
    assert p["subdomain"] == objs["Service"]["metadata"]["name"] == "llama-sweep"
    assert svc["selector"].items() <= spec["template"]["metadata"]["labels"].items()
    container = p["containers"][0]
    (index_env,) = [e for e in container["env"] if e["name"] == "HARNESS_INDEX"]
    assert "job-completion-index" in index_env["valueFrom"]["fieldRef"]["fieldPath"]
    args = container["args"]
    assert args[args.index("--shard") + 1] == "$(HARNESS_INDEX)/3"
    assert args[args.index("--barrier") + 1] == "llama-sweep-0.llama-sweep.benchmarks.svc.cluster.local:7000"
    assert args[args.index("--out") + 1] == "/results/llama-sweep/part-$(HARNESS_INDEX)"
    # The harness's own parser accepts what the pod runs, with the index substituted.
    parsed = build_parser().parse_args([a.replace("$(HARNESS_INDEX)", "2") for a in args])
    plan = plan_from_args(parsed)
    assert plan["shard"] == (2, 3) and [lv.concurrency for lv in plan["levels"]] == [1, 10]


def test_one_harness_is_a_plain_job_without_a_service() -> None:
    objs = render(props())
    assert "Service" not in objs and "completionMode" not in objs["Job"]["spec"]


def test_too_few_users_for_the_harnesses_is_a_clear_error() -> None:
    with pytest.raises(ConfigError) as err:
        props(harnesses=4, concurrency=(1, 8))
    assert "concurrency/harnesses" in str(err.value) and "a pod without users" in str(err.value)
