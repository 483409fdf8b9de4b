"""``eks-llm-stack verify`` against a fake Kubernetes API (tests/fake_kube.py): a healthy cluster passes,
and each way a cluster can be wrong fails with its own row, detail and fix."""

from __future__ import annotations

import base64
import gzip
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from eks_llm_stack.bench.simulator import SimulatorConfig
from eks_llm_stack.cli import main
from eks_llm_stack.ops.preflight import Status
from eks_llm_stack.ops.verify import (
    Expectations,
    KubeAccessError,
    KubeApi,
    VerifyOptions,
    VerifyReport,
    expectations,
    load_kubeconfig,
    releases_of,
    run_verify,
)
from eks_llm_stack.ops.verify.checks import EndpointError, Row
from eks_llm_stack.ops.verify.forward import KubectlForwarder
from eks_llm_stack.ops.verify.helm import ReleaseDecodeError, decode_release
from eks_llm_stack.plan import plan_platform
from eks_llm_stack.versions import KARPENTER
from tests.conftest import Synthesized
from tests.fake_kube import (
    FakeApi,
    FakeForwarder,
    ModelServers,
    healthy_cluster,
    helm_release_secret,
    node,
    serve_api,
    write_kubeconfig,
)

KEYS = {"llama-3-8b": "sk-llama-8b", "qwen3-8b": "sk-qwen", "llama-405b": "sk-405b"}
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def expect_of(synth: Synthesized) -> Expectations:
    return expectations(plan_platform(synth.profile), releases_of(synth.templates, synth.outdir / "cdk.out"))


@dataclass
class Cluster:
    api: FakeApi
    kube: KubeApi
    forward: FakeForwarder
    servers: ModelServers
    expect: Expectations
    kubeconfig: Path
    ingress_url: Any

    def verify(self, **options: Any) -> VerifyReport:
        opts = VerifyOptions(ingress_url=self.ingress_url, timeout=5, completion_timeout=10, **options)
        return run_verify(self.kube, self.expect, forward=self.forward, options=opts, deploy_hint="cdk deploy --all")

    def failed(self, **options: Any) -> list[Row]:
        return list(self.verify(**options).failed())


def _cluster(expect: Expectations, tmp_path: Path) -> Iterator[Cluster]:
    api, forward, servers = FakeApi(), FakeForwarder(), ModelServers()
    try:
        ingress_url = healthy_cluster(api, expect, servers, forward, KEYS)
        with serve_api(api) as url:
            kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url)
            yield Cluster(api, KubeApi(load_kubeconfig(kubeconfig), timeout=5), forward, servers, expect, kubeconfig,
                          ingress_url)  # fmt: skip
    finally:
        servers.close()


@pytest.fixture
def ci(ephemeral_synth: Synthesized, tmp_path: Path) -> Iterator[Cluster]:
    """The ci-ephemeral platform, deployed and healthy: one spot GPU node, the simulator model."""
    yield from _cluster(expect_of(ephemeral_synth), tmp_path)


@pytest.fixture
def prod(production_synth: Synthesized, tmp_path: Path) -> Iterator[Cluster]:
    """production.example, healthy: an EFA pool, API keys, an ALB in front of one model."""
    yield from _cluster(expect_of(production_synth), tmp_path)


def only(rows: list[Row]) -> Row:
    assert len(rows) == 1, [(r.check, r.target, r.detail) for r in rows]
    return rows[0]


# -- what is expected ---------------------------------------------------------------------------------


def test_expected_releases_are_the_synthesized_ones_at_the_pins(ephemeral_synth: Synthesized) -> None:
    expect = expect_of(ephemeral_synth)
    releases = {r.name: (r.namespace, r.chart, r.version) for r in expect.releases}
    assert releases["karpenter"] == ("kube-system", "karpenter", KARPENTER.version)
    assert {"karpenter-crds", "kube-prometheus-stack", "external-secrets", "lws", "lws-crds", "keda"} <= set(releases)
    crds = {c.name: c.version for c in expect.crds}
    assert crds["nodepools.karpenter.sh"] == "v1" and crds["leaderworkersets.leaderworkerset.x-k8s.io"] == "v1"
    assert crds["scaledobjects.keda.sh"] == "v1alpha1" and crds["servicemonitors.monitoring.coreos.com"] == "v1"
    assert crds["externalsecrets.external-secrets.io"] == "v1"
    # No load balancer controller in this profile: none of its CRDs are asked for.
    assert not any(name.endswith("elbv2.k8s.aws") for name in crds)


def test_production_expects_efa_on_the_training_pool_and_the_load_balancer(production_synth: Synthesized) -> None:
    expect = expect_of(production_synth)
    resources = {p.name: p.resources for p in expect.pools}
    assert any("vpc.amazonaws.com/efa" in r for r in resources.values())
    assert any(r == ("nvidia.com/gpu",) for r in resources.values())
    assert "aws-efa-k8s-device-plugin" in {r.name for r in expect.releases}
    assert "ingressclassparams.elbv2.k8s.aws" in {c.name for c in expect.crds}
    qwen = next(m for m in expect.models if m.name == "qwen3-8b")
    assert (qwen.ingress, qwen.ingress_object, qwen.api_key_secret) == ("alb", "qwen3-8b", "qwen3-8b-api-key")


# -- helm's release records ---------------------------------------------------------------------------


def test_a_release_record_decodes_as_helm_writes_it() -> None:
    secret = helm_release_secret("karpenter", "kube-system", "karpenter", "1.14.1", revision=3)
    release = decode_release(secret["data"]["release"])
    assert (release["name"], release["version"], release["chart"]["metadata"]["version"]) == ("karpenter", 3, "1.14.1")


def test_a_record_stored_before_compression_decodes_too() -> None:
    plain = base64.b64encode(base64.b64encode(json.dumps({"name": "old", "version": 1}).encode())).decode()
    assert decode_release(plain)["name"] == "old"


def test_a_record_that_is_not_helms_is_refused() -> None:
    with pytest.raises(ReleaseDecodeError, match="not a helm release record"):
        decode_release(base64.b64encode(b"not base64 at all!").decode())
    with pytest.raises(ReleaseDecodeError):
        decode_release(base64.b64encode(base64.b64encode(gzip.compress(b"[1, 2]"))).decode())


# -- a healthy cluster ----------------------------------------------------------------------------------


def test_a_healthy_ci_cluster_passes_every_check(ci: Cluster) -> None:
    report = ci.verify()
    assert report.ok and report.exit_code == 0
    assert {r.status for r in report.rows} == {Status.PASS}, [r for r in report.rows if r.status is not Status.PASS]
    checks = {r.check for r in report.rows}
    assert checks == {"helm release", "CRD", "GPU node", "DCGM exporter", "model /health", "model completion"}
    assert any(r.target == "kube-system/karpenter" and "chart karpenter 1.14.1" in r.detail for r in report.rows)
    assert ci.forward.opened == [("llm-serving", "sim", 8000)]


def test_a_healthy_production_cluster_passes_with_keys_efa_and_the_alb(prod: Cluster) -> None:
    asked: list[str] = []
    resolve = prod.ingress_url
    prod.ingress_url = lambda host: asked.append(host) or resolve(host)
    report = prod.verify()
    assert report.ok, [(r.check, r.target, r.detail) for r in report.failed()]
    auth = [r for r in report.rows if r.check == "model auth"]
    assert len(auth) == 3 and all(r.detail == "401 without the API key" for r in auth)
    efa = [r for r in report.rows if r.check == "GPU node" and "vpc.amazonaws.com/efa" in r.detail]
    assert len(efa) == 1, "the EFA pool's node must be checked for vpc.amazonaws.com/efa"
    completions = sorted(r.target.split(" (")[0] + " " + r.target.split(" ")[1] for r in report.rows
                         if r.check == "model completion")  # fmt: skip
    assert completions == ["llm-serving/llama-3-8b (Service)", "llm-serving/llama-405b (Service)",
                           "llm-serving/qwen3-8b (ALB)"]  # fmt: skip
    # The ALB is asked by the host name of its rule, not the load balancer's generated name.
    assert asked == ["qwen3-8b.models.example.com"]


def test_a_chart_published_with_a_leading_v_matches_its_pin(ci: Cluster) -> None:
    """The lws chart's Chart.yaml says v0.10.0 where versions.py pins 0.10.0: the same release."""
    ci.api.put("/api/v1/namespaces/lws-system/secrets", helm_release_secret("lws", "lws-system", "lws", "v0.10.0",
                                                                             revision=2))  # fmt: skip
    assert ci.verify().ok


# -- each way a cluster is wrong -------------------------------------------------------------------------


def test_a_release_at_another_chart_version_fails(ci: Cluster) -> None:
    ci.api.put("/api/v1/namespaces/kube-system/secrets", helm_release_secret("karpenter", "kube-system", "karpenter",
                                                                             "1.13.0", revision=2))  # fmt: skip
    row = only(ci.failed())
    assert (row.check, row.target) == ("helm release", "kube-system/karpenter")
    assert row.detail == "chart karpenter 1.13.0, revision 2, deployed; the pinned chart is karpenter 1.14.1"
    assert row.fix.startswith("deploy the LlmCi-Platform stack again (cdk deploy --all) to install the pinned chart")


def test_a_failed_upgrade_fails_even_at_the_pinned_version(ci: Cluster) -> None:
    ci.api.put("/api/v1/namespaces/keda/secrets", helm_release_secret("keda", "keda", "keda", "2.20.2", revision=4,
                                                                      status="failed"))  # fmt: skip
    row = only(ci.failed())
    assert row.target == "keda/keda" and row.detail.endswith("revision 4, failed")
    assert "helm -n keda history keda" in row.fix


def test_a_release_that_was_never_installed_fails(ci: Cluster) -> None:
    ci.api.collections["/api/v1/namespaces/lws-system/secrets"].clear()
    row = only(ci.failed())
    assert row.target == "lws-system/lws" and row.detail == "not installed (no helm release Secret in lws-system)"


def test_a_missing_crd_fails(ci: Cluster) -> None:
    ci.api.remove(CRDS, "nodepools.karpenter.sh")
    row = only(ci.failed())
    assert (row.check, row.target, row.detail) == ("CRD", "nodepools.karpenter.sh v1", "not installed")
    assert row.fix == "the karpenter release installs it: cdk deploy --all"


def test_a_crd_that_does_not_serve_the_pinned_version_fails(ci: Cluster) -> None:
    crd = ci.api.collections[CRDS]["scaledobjects.keda.sh"]
    crd["spec"]["versions"] = [{**crd["spec"]["versions"][0], "name": "v1beta1"}]
    row = only(ci.failed())
    assert row.target == "scaledobjects.keda.sh v1alpha1" and row.detail == "serves v1beta1, not v1alpha1"


def test_a_gpu_node_without_allocatable_gpus_fails(ci: Cluster) -> None:
    [name] = ci.api.collections["/api/v1/nodes"]
    ci.api.put("/api/v1/nodes", node(name, "ci-gpu", "g6.xlarge", {}))
    row = only(ci.failed())
    assert row.check == "GPU node" and row.detail == "g6.xlarge allocatable nvidia.com/gpu: absent"
    assert row.fix.startswith("the NVIDIA device plugin (kube-system, release nvidia-device-plugin) must run")


def test_an_efa_node_without_efa_devices_fails(prod: Cluster) -> None:
    efa_pool = next(p for p in prod.expect.pools if "vpc.amazonaws.com/efa" in p.resources)
    name = next(n for n, o in prod.api.collections["/api/v1/nodes"].items()
                if o["metadata"]["labels"]["eks-llm-stack.io/pool"] == efa_pool.name)  # fmt: skip
    prod.api.put("/api/v1/nodes", node(name, efa_pool.name, "p5.48xlarge", {"nvidia.com/gpu": "8"}))
    row = only(prod.failed())
    assert row.detail == "p5.48xlarge allocatable vpc.amazonaws.com/efa: absent"
    assert "the EFA device plugin" in row.fix and "NVIDIA" not in row.fix


def test_a_pool_with_no_node_yet_is_skipped_not_failed(ci: Cluster) -> None:
    ci.api.collections["/api/v1/nodes"].clear()
    ds = ci.api.collections["/apis/apps/v1/namespaces/monitoring-node-agents/daemonsets"]["dcgm-exporter"]
    ds["status"] = {"desiredNumberScheduled": 0, "numberReady": 0}
    report = ci.verify()
    assert report.ok
    skipped = [r for r in report.rows if r.status is Status.SKIP]
    assert [r.check for r in skipped] == ["GPU node", "DCGM exporter"]


def test_dcgm_exporter_not_serving_the_gpu_fields_fails(ci: Cluster) -> None:
    path = next(p for p in ci.api.proxies if p.endswith("/proxy/metrics"))
    ci.api.proxies[path] = (200, "# HELP go_goroutines Number of goroutines.\ngo_goroutines 12\n")
    row = only(ci.failed())
    assert row.check == "DCGM exporter" and row.detail == "serves /metrics but no DCGM_FI_DEV_GPU_UTIL sample"
    assert "kubectl -n monitoring-node-agents logs ds/dcgm-exporter" in row.fix


def test_dcgm_exporter_pods_not_ready_fail(ci: Cluster) -> None:
    ds = ci.api.collections["/apis/apps/v1/namespaces/monitoring-node-agents/daemonsets"]["dcgm-exporter"]
    ds["status"] = {"desiredNumberScheduled": 1, "numberReady": 0}
    row = only(ci.failed())
    assert row.detail == "0/1 pods ready"


def test_a_model_whose_health_answers_503_fails(ci: Cluster) -> None:
    [(key, _)] = ci.forward.urls.items()
    ci.forward.urls[key] = ci.servers.canned(503)
    row = only(ci.failed())
    assert (row.check, row.detail) == ("model /health", "GET /health answered 503")
    assert row.fix.startswith("the model is not ready: kubectl -n llm-serving get pods")


def test_a_model_whose_completion_errors_fails(ci: Cluster) -> None:
    [(key, _)] = ci.forward.urls.items()
    ci.forward.urls[key] = ci.servers.simulator(SimulatorConfig(model="sim", error_rate=1.0))
    row = only(ci.failed())
    assert row.check == "model completion" and row.detail.startswith("POST /v1/completions answered 500")


def test_a_completion_for_another_model_name_fails(ci: Cluster) -> None:
    """The Service answers, but the server serves another model: the completion is refused (404)."""
    [(key, _)] = ci.forward.urls.items()
    ci.forward.urls[key] = ci.servers.simulator(SimulatorConfig(model="other"))
    row = only(ci.failed())
    assert row.detail.startswith("POST /v1/completions answered 404")


def test_a_model_service_that_cannot_be_reached_fails(ci: Cluster) -> None:
    ci.forward.urls.clear()
    row = only(ci.failed())
    assert row.detail == 'cannot open a connection to the Service: services "sim" not found'


def test_a_model_that_accepts_requests_without_its_key_fails(prod: Cluster) -> None:
    key = ("llm-serving", "llama-3-8b")
    prod.forward.urls[key] = prod.servers.simulator(SimulatorConfig(model="llama-3-8b"))
    row = only(prod.failed())
    assert row.check == "model auth" and row.detail == "a completion without the API key answered 200, not 401"


def test_a_missing_api_key_secret_fails(prod: Cluster) -> None:
    prod.api.remove("/api/v1/namespaces/llm-serving/secrets", "qwen3-8b-api-key")
    row = only(prod.failed())
    assert (row.check, row.target, row.detail) == ("model API key", "llm-serving/qwen3-8b-api-key", "Secret not found")
    assert "kubectl -n llm-serving describe externalsecret qwen3-8b-api-key" in row.fix


def test_an_alb_without_an_address_fails(prod: Cluster) -> None:
    prod.api.collections["/apis/networking.k8s.io/v1/namespaces/llm-serving/ingresses"]["qwen3-8b"]["status"] = {}
    row = only(prod.failed())
    assert row.detail == "the Ingress has no load balancer address"
    assert "aws-load-balancer-controller" in row.fix


def test_via_service_skips_the_load_balancer(prod: Cluster) -> None:
    prod.api.collections["/apis/networking.k8s.io/v1/namespaces/llm-serving/ingresses"]["qwen3-8b"]["status"] = {}
    assert prod.verify(via="service").ok


def test_a_secret_the_identity_may_not_read_fails_with_the_permission_fix(ci: Cluster) -> None:
    ci.api.forbidden.add("/api/v1/namespaces/keda/secrets")
    row = only(ci.failed())
    assert row.target == "keda/keda" and "forbidden (403)" in row.detail and "access entry" in row.fix


def test_a_failing_read_fails_its_row_and_the_other_checks_still_run(ci: Cluster) -> None:
    healthy = len(ci.verify().rows)
    ci.api.failing["/api/v1/namespaces/keda/secrets"] = 500
    report = ci.verify()
    assert len(report.rows) == healthy  # one row failed, none lost, no access error
    row = only(ci.failed())
    assert row.target == "keda/keda" and "answered 500" in row.detail and "/readyz" in row.fix


def test_every_problem_is_reported_at_once(ci: Cluster) -> None:
    ci.api.remove(CRDS, "nodepools.karpenter.sh")
    ci.api.collections["/api/v1/namespaces/lws-system/secrets"].clear()
    [(key, _)] = ci.forward.urls.items()
    ci.forward.urls[key] = ci.servers.canned(503)
    assert {r.check for r in ci.failed()} == {"CRD", "helm release", "model /health"}


# -- the cluster cannot be used: exit 4 -----------------------------------------------------------------


def test_rejected_credentials_are_an_access_error(ci: Cluster, tmp_path: Path) -> None:
    bad = load_kubeconfig(write_kubeconfig(tmp_path / "bad", ci.kube.target.server, token="expired"))
    with pytest.raises(KubeAccessError, match=r"rejected the credentials \(401\)") as err:
        run_verify(KubeApi(bad), ci.expect, forward=ci.forward)
    assert "access entry" in str(err.value)


def test_cli_exit_codes(ci: Cluster, ephemeral_synth: Synthesized, tmp_path: Path, capsys: Any,
                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setattr("eks_llm_stack.ops.verify.forward.KubectlForwarder", lambda **_: ci.forward)
    base = ["verify", "-p", "ci-ephemeral", "--assembly", str(ephemeral_synth.outdir / "cdk.out"), "--timeout", "5"]

    assert main([*base, "--kubeconfig", str(ci.kubeconfig), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["exit_code"] == 0 and report["context"] == "fake"
    assert {"check", "target", "status", "detail", "fix"} == set(report["checks"][0])

    ci.api.remove(CRDS, "nodepools.karpenter.sh")
    assert main([*base, "--kubeconfig", str(ci.kubeconfig), "--width", "300"]) == 1
    out = capsys.readouterr().out
    assert "nodepools.karpenter.sh v1" in out and "verify FAILED: 1 of" in out

    bad = write_kubeconfig(tmp_path / "bad", ci.kube.target.server, token="expired")
    assert main([*base, "--kubeconfig", str(bad)]) == 4
    err = capsys.readouterr().err
    assert err.startswith("error: eks-llm-stack verify: the API server") and "Traceback" not in err

    gone = write_kubeconfig(tmp_path / "gone", "http://127.0.0.1:9")
    assert main([*base, "--kubeconfig", str(gone)]) == 4
    assert "cannot reach the API server http://127.0.0.1:9" in capsys.readouterr().err

    assert main([*base, "--kubeconfig", str(tmp_path / "absent")]) == 4
    assert "cannot read the kubeconfig" in capsys.readouterr().err

    assert main([*base, "--kubeconfig", str(ci.kubeconfig), "--context", "prod"]) == 4
    assert "has no context named 'prod' (it has ['fake'])" in capsys.readouterr().err


# -- kubeconfig credentials and the port-forward -----------------------------------------------------------


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_an_exec_plugin_token_is_used(ci: Cluster, tmp_path: Path) -> None:
    """What 'aws eks get-token' prints (an ExecCredential) is the bearer token."""
    import yaml

    plugin = _script(tmp_path / "get-token", "echo '{\"kind\": \"ExecCredential\", \"apiVersion\": "
                     "\"client.authentication.k8s.io/v1beta1\", \"status\": {\"token\": \"fake-token\"}}'\n")  # fmt: skip
    doc = yaml.safe_load(ci.kubeconfig.read_text())
    doc["users"][0]["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": str(plugin),
                                        "args": ["eks", "get-token"]}}  # fmt: skip
    path = tmp_path / "exec-kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    assert KubeApi(load_kubeconfig(path)).get("/api/v1/nodes") is not None


def test_a_failing_exec_plugin_is_an_access_error(ci: Cluster, tmp_path: Path) -> None:
    import yaml

    plugin = _script(tmp_path / "get-token", "echo 'Unable to locate credentials' >&2\nexit 255\n")
    doc = yaml.safe_load(ci.kubeconfig.read_text())
    doc["users"][0]["user"] = {"exec": {"command": str(plugin)}}
    path = tmp_path / "exec-kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(KubeAccessError, match="Unable to locate credentials"):
        KubeApi(load_kubeconfig(path)).get("/api/v1/nodes")


def test_kubectl_forwarder_reads_the_port_kubectl_picked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _script(tmp_path / "kubectl", 'echo "$@" > "$(dirname "$0")/argv"\n'
            "echo 'Forwarding from 127.0.0.1:43117 -> 8000'\nexec sleep 30\n")  # fmt: skip
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    forward = KubectlForwarder(kubeconfig=tmp_path / "kc", context="fake", timeout=10)
    with forward("llm-serving", "sim", 8000) as url:
        assert url == "http://127.0.0.1:43117"
    argv = (tmp_path / "argv").read_text().split()
    assert argv == ["--kubeconfig", str(tmp_path / "kc"), "--context", "fake", "port-forward", "--namespace",
                    "llm-serving", "service/sim", ":8000"]  # fmt: skip


def test_kubectl_forwarder_reports_kubectls_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _script(tmp_path / "kubectl", "echo 'error: services \"sim\" not found' >&2\nexit 1\n")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    forward = KubectlForwarder(timeout=10)
    with (
        pytest.raises(EndpointError, match='exited 1: error: services "sim" not found'),
        forward("llm-serving", "sim", 8000),
    ):
        pass


@pytest.mark.slow
def test_without_an_assembly_verify_synthesizes_the_same_releases(ephemeral_synth: Synthesized) -> None:
    from eks_llm_stack.ops.verify import synthesized_releases

    mine = {(r.name, r.namespace, r.chart, r.version) for r in synthesized_releases(ephemeral_synth.profile)}
    assert mine == {(r.name, r.namespace, r.chart, r.version) for r in expect_of(ephemeral_synth).releases}
