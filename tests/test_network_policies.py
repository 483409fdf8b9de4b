"""The serving namespace's NetworkPolicies, judged by an evaluator of NetworkPolicy semantics.

There is no cluster here: the policies of the synthesized profiles are data, and
:mod:`eks_llm_stack.gates.network_policy` applies the Kubernetes rules to them. The evaluator
itself is checked first on hand-written policies, so a test below cannot pass because the
evaluator allows everything.
"""

from __future__ import annotations

from typing import Any

import pytest

from eks_llm_stack.charts.network_policies import API_CLIENT_LABEL, LWS_GROUP_INDEX_LABEL, LWS_NAME_LABEL
from eks_llm_stack.gates.network_policy import External, Pod, can_connect, selector_matches

# -- the evaluator on small, known cases --------------------------------------------------------


def _np(ns: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "x", "namespace": ns},
        "spec": spec,
    }


DENY = _np("a", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
WEB = Pod("a", {"app": "web"}, ports={"http": 8000})
OTHER_NS = Pod("b", {"app": "web"})


def test_no_policy_means_open_and_default_deny_means_closed():
    assert can_connect([], OTHER_NS, WEB, 8000)
    assert not can_connect([DENY], OTHER_NS, WEB, 8000)
    assert not can_connect([DENY], WEB, OTHER_NS, 53)


def test_pod_selector_alone_is_the_policy_namespace_only():
    allow = _np("a", {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"from": [{"podSelector": {}}]}]})
    assert can_connect([allow], Pod("a", {"x": "y"}), WEB, 8000)
    assert not can_connect([allow], OTHER_NS, WEB, 8000)


def test_namespace_and_pod_selector_together_must_both_match():
    peer = {"namespaceSelector": {"matchLabels": {"team": "x"}}, "podSelector": {"matchLabels": {"role": "c"}}}
    allow = _np("a", {"podSelector": {}, "ingress": [{"from": [peer]}]})
    assert can_connect([allow], Pod("b", {"role": "c"}, {"team": "x"}), WEB, 8000)
    assert not can_connect([allow], Pod("b", {"role": "c"}), WEB, 8000)
    assert not can_connect([allow], Pod("b", {"role": "d"}, {"team": "x"}), WEB, 8000)


def test_ports_named_numbered_and_protocol():
    allow = _np("a", {"podSelector": {}, "ingress": [{"ports": [{"port": "http"}]}]})
    assert can_connect([allow], OTHER_NS, WEB, 8000)
    assert not can_connect([allow], OTHER_NS, WEB, 9000)
    udp = _np("a", {"podSelector": {}, "ingress": [{"ports": [{"protocol": "UDP", "port": 53}]}]})
    assert not can_connect([udp], OTHER_NS, WEB, 53)
    assert can_connect([udp], OTHER_NS, WEB, 53, "UDP")
    ranged = _np("a", {"podSelector": {}, "ingress": [{"ports": [{"port": 100, "endPort": 200}]}]})
    assert can_connect([ranged], OTHER_NS, WEB, 150) and not can_connect([ranged], OTHER_NS, WEB, 201)


def test_ip_blocks_and_exceptions():
    allow = _np(
        "a",
        {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.9.0/24"]}}]}]},
    )
    assert can_connect([allow], External("10.0.1.1"), WEB, 8000)
    assert not can_connect([allow], External("10.0.9.1"), WEB, 8000)
    assert not can_connect([allow], External("192.0.2.1"), WEB, 8000)


def test_egress_needs_its_own_allowance():
    ingress_only = _np("a", {"podSelector": {}, "policyTypes": ["Ingress"]})
    assert can_connect([ingress_only], WEB, OTHER_NS, 80)
    egress_deny = _np("a", {"podSelector": {}, "egress": []})
    assert not can_connect([egress_deny], WEB, OTHER_NS, 80)


def test_selector_expressions():
    labels = {"tier": "api", "env": "prod"}
    assert selector_matches({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["api"]}]}, labels)
    assert not selector_matches({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}, labels)
    assert selector_matches({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}, labels)
    assert not selector_matches({"matchExpressions": [{"key": "x", "operator": "Exists"}]}, labels)


# -- the shipped policies ----------------------------------------------------------------------


def _policies(synth: Any) -> list[dict[str, Any]]:
    return [d for docs in synth.manifests.values() for d in docs if d.get("kind") == "NetworkPolicy"]


def _model_pod(synth: Any, model: str, **extra: str) -> Pod:
    ns = synth.profile.serving_namespace
    labels = {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": model, **extra}
    return Pod(ns, labels, ports={"http": 8000})


PROMETHEUS = Pod("monitoring", {"app.kubernetes.io/name": "prometheus"})


@pytest.fixture(scope="module")
def prod(production_synth: Any) -> tuple[Any, list[dict[str, Any]]]:
    return production_synth, _policies(production_synth)


def test_a_pod_of_another_namespace_cannot_reach_the_model_port(prod):
    synth, policies = prod
    target = _model_pod(synth, "llama-3-8b")
    # Even one that copies the model's and Prometheus' pod labels.
    for intruder in (
        Pod("default", {}),
        Pod("default", dict(target.labels)),
        Pod("default", {"app.kubernetes.io/name": "prometheus"}),
        Pod("default", {API_CLIENT_LABEL: "true"}),
    ):
        assert not can_connect(policies, intruder, target, 8000), intruder
    # Nor a pod of the serving namespace itself, unless it is a labelled client there.
    assert not can_connect(policies, Pod(synth.profile.serving_namespace, {"app": "x"}), target, 8000)


def test_prometheus_clients_and_the_load_balancer_path_are_allowed(prod):
    synth, policies = prod
    target = _model_pod(synth, "llama-3-8b")
    assert can_connect(policies, PROMETHEUS, target, 8000)
    client_ns = {API_CLIENT_LABEL: "true"}
    assert can_connect(policies, Pod("benchmarks", {API_CLIENT_LABEL: "true"}, client_ns), target, 8000)
    # Nothing but the API port, even for an allowed peer.
    assert not can_connect(policies, PROMETHEUS, target, 22)
    # The ALB (qwen3-8b has one) sends from the VPC; a model without a load balancer takes none.
    alb = External("10.64.3.7")
    assert can_connect(policies, alb, _model_pod(synth, "qwen3-8b"), 8000)
    assert not can_connect(policies, alb, target, 8000)
    assert not can_connect(policies, External("198.51.100.1"), _model_pod(synth, "qwen3-8b"), 8000)


def test_model_pods_reach_dns_and_only_the_egress_their_weights_need(prod):
    synth, policies = prod
    dns = Pod("kube-system", {"k8s-app": "kube-dns"})
    internet = External("52.216.1.1")
    s3_model, hub_model, claim_model = (
        _model_pod(synth, "llama-3-8b"),
        _model_pod(synth, "qwen3-8b"),
        _model_pod(synth, "llama-405b"),
    )
    for pod in (s3_model, hub_model, claim_model):
        assert can_connect(policies, pod, dns, 53, "UDP")
        assert not can_connect(policies, pod, Pod("default", {}), 8000)
    # llama-3-8b is cached by a fetch Job, qwen3-8b too; llama-405b reads a claim: none go out.
    for pod in (s3_model, claim_model):
        assert not can_connect(policies, pod, internet, 443)
    fetch = Pod(synth.profile.serving_namespace, {"app.kubernetes.io/name": "model-fetch"})
    assert can_connect(policies, fetch, internet, 443)
    assert can_connect(policies, fetch, External("169.254.170.23"), 80)
    assert not can_connect(policies, fetch, internet, 80)


def test_multi_node_ports_are_open_only_inside_one_group(prod):
    synth, policies = prod
    name = "llama-405b-group"

    def member(group: int, role: str) -> Pod:
        return _model_pod(
            synth,
            "llama-405b",
            **{LWS_NAME_LABEL: name, LWS_GROUP_INDEX_LABEL: str(group)},
            **{"eks-llm-stack.io/role": role},
        )

    leader0, worker0, worker1 = member(0, "leader"), member(0, "worker"), member(1, "worker")
    assert can_connect(policies, worker0, leader0, 29501)
    assert can_connect(policies, leader0, worker0, 40123)  # NCCL's ephemeral ports
    assert not can_connect(policies, worker1, leader0, 29501)
    assert not can_connect(policies, _model_pod(synth, "llama-3-8b"), leader0, 29501)


def test_every_profile_isolates_its_serving_namespace(any_synth):
    policies = _policies(any_synth)
    ns = any_synth.profile.serving_namespace
    assert not can_connect(policies, Pod("default", {}), Pod(ns, {"app": "anything"}), 8000)
    assert not can_connect(policies, Pod(ns, {"app": "anything"}), External("8.8.8.8"), 443)


def test_a_labelled_client_of_the_serving_namespace_reaches_the_models_and_nothing_else(prod):
    synth, policies = prod
    ns = synth.profile.serving_namespace
    bench = Pod(ns, {API_CLIENT_LABEL: "true", "app.kubernetes.io/name": "benchmark"})
    assert can_connect(policies, bench, _model_pod(synth, "llama-3-8b"), 8000)
    assert not can_connect(policies, bench, _model_pod(synth, "llama-3-8b"), 29501)
    assert not can_connect(policies, bench, Pod(ns, {"app.kubernetes.io/name": "model-fetch"}), 8000)


def test_the_benchmark_job_carries_the_client_label_and_reads_its_key_from_a_file():
    import cdk8s

    from eks_llm_stack.charts.benchmark_job import BenchmarkJobChart, BenchmarkJobProps, PvcResults

    props = BenchmarkJobProps(
        name="run-1",
        url="http://llama-3-8b.llm-serving.svc:8000",
        model="llama-3-8b",
        results=PvcResults(claim_name="results"),
        namespace="llm-serving",
        scenario="baseline",
        api_key_secret="llama-3-8b-api-key",
    )
    (job,) = [d for d in BenchmarkJobChart(cdk8s.App(), "b", props=props).to_json() if d["kind"] == "Job"]
    pod = job["spec"]["template"]
    assert pod["metadata"]["labels"][API_CLIENT_LABEL] == "true"
    (c,) = pod["spec"]["containers"]
    assert c["args"][-2:] == ["--api-key-env", "BENCH_API_KEY"]
    assert "secretKeyRef" not in str(c.get("env"))
    assert {"name": "api-key", "secret": {"secretName": "llama-3-8b-api-key", "defaultMode": 0o440}} in pod["spec"][
        "volumes"
    ]
