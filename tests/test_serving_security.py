"""The serving path: authenticated models, load balancers that admit the VPC and route /v1 only."""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import pytest

from eks_llm_stack.charts.api_key_auth import KEY_FILE_ENV
from eks_llm_stack.charts.model_auth import MIDDLEWARE, middleware_source
from eks_llm_stack.config import validate_profile
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.gates.manifests import validate_manifests

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0b7c6e3e-8d1f-4b7e-9c43-2d8a1e6f5a10"
WAF = "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/models/0b7c6e3e-8d1f-4b7e-9c43-2d8a1e6f5a10"


def _docs(synth: Any, model: str) -> list[dict[str, Any]]:
    return synth.manifests[f"model-{model}"]


def _kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


def _server(docs: list[dict[str, Any]]) -> dict[str, Any]:
    d = next(x for x in docs if x["kind"] in ("Deployment", "LeaderWorkerSet"))
    if d["kind"] == "Deployment":
        return d["spec"]["template"]["spec"]
    return d["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]


@pytest.mark.parametrize("model", ["llama-3-8b", "qwen3-8b", "llama-405b"])
def test_every_vllm_model_requires_its_api_key_from_a_mounted_file(production_synth, model):
    docs = _docs(production_synth, model)
    pod = _server(docs)
    (c,) = pod["containers"]
    command = " ".join(c["command"])
    assert f"--middleware {MIDDLEWARE}" in command
    # The key is never on the command line or in the pod spec's environment.
    assert "--api-key" not in command
    assert not any("secretKeyRef" in json.dumps(e) and "api-key" in json.dumps(e) for e in c["env"])
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env[KEY_FILE_ENV] == "/etc/eks-llm-stack/api-key/api-key"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["api-key"]["secret"]["secretName"] == f"{model}-api-key"
    assert volumes["api-auth"]["configMap"]["name"] == f"{model}-auth"
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["api-key"]["readOnly"] and mounts["api-auth"]["readOnly"]
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == f"{model}-auth")
    assert config["data"]["eks_llm_api_key.py"] == middleware_source()
    assert validate_manifests(docs) == []


def test_probes_and_the_drain_use_open_paths(production_synth):
    """Kubelet probes, the preStop drain and Prometheus need no key: /health and /metrics are open."""
    from eks_llm_stack.charts.api_key_auth import OPEN_PATHS

    (c,) = _server(_docs(production_synth, "llama-3-8b"))["containers"]
    assert c["readinessProbe"]["httpGet"]["path"] in OPEN_PATHS
    assert "/metrics" in " ".join(c["lifecycle"]["preStop"]["exec"]["command"]) and "/metrics" in OPEN_PATHS


def test_the_simulator_and_api_key_false_take_no_key(ephemeral_synth):
    pod = _server(_docs(ephemeral_synth, "sim"))
    assert "--middleware" not in json.dumps(pod)


def test_the_alb_routes_v1_only_and_admits_the_vpc_by_default(production_synth):
    ing = _kind(_docs(production_synth, "qwen3-8b"), "Ingress")
    (path,) = ing["spec"]["rules"][0]["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/v1", "Prefix")
    # The controller's own default would be 0.0.0.0/0; ours is the VPC.
    assert ing["metadata"]["annotations"]["alb.ingress.kubernetes.io/inbound-cidrs"] == "10.64.0.0/16"


def _prod_with(ingress: dict[str, Any], **model: Any) -> dict[str, Any]:
    from test_serving_stack import prod_data

    data = prod_data()
    qwen = next(m for m in data["models"] if m["name"] == "qwen3-8b")
    qwen["ingress"] = {"certificate_arn": CERT, **ingress}
    qwen.update(model)
    return data


def test_internet_facing_is_refused_without_cidrs_and_without_authentication():
    with pytest.raises(ConfigError) as err:
        validate_profile(_prod_with({"scheme": "internet-facing"}, api_key=False))
    text = str(err.value)
    assert "models[1]" in text
    assert "allowed_cidrs" in text and "fix: list them under ingress.allowed_cidrs" in text
    assert "api_key is false" in text and "keep api_key: true" in text
    # Both set: accepted.
    validate_profile(_prod_with({"scheme": "internet-facing", "allowed_cidrs": ["198.51.100.0/24"]}))


def test_access_logs_and_waf_become_the_controller_annotations(cdk_context):
    from aws_cdk import App

    from eks_llm_stack.synth import build, write_chart_manifests

    data = _prod_with({"access_logs": "s3://llm-prod-lb-logs/qwen", "waf_acl_arn": WAF})
    app = App(context=cdk_context, builtin_cloud_formation_validation=False)
    built = build(validate_profile(data), app=app)
    import tempfile
    from pathlib import Path

    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_chart_manifests(built, Path(tmp))
        docs = [d for p in paths if p.stem == "model-qwen3-8b" for d in yaml.safe_load_all(p.read_text()) if d]
    ann = _kind(docs, "Ingress")["metadata"]["annotations"]
    assert ann["alb.ingress.kubernetes.io/wafv2-acl-arn"] == WAF
    attrs = ann["alb.ingress.kubernetes.io/load-balancer-attributes"].split(",")
    assert "access_logs.s3.enabled=true" in attrs
    assert "access_logs.s3.bucket=llm-prod-lb-logs" in attrs and "access_logs.s3.prefix=qwen" in attrs


def test_bad_waf_and_log_locations_are_refused_with_the_fix():
    with pytest.raises(ConfigError, match=r"(?s)waf_acl_arn.*regional/webacl"):
        validate_profile(_prod_with({"waf_acl_arn": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/x/y"}))
    with pytest.raises(ConfigError, match=r"(?s)access_logs.*fix: write s3://bucket"):
        validate_profile(_prod_with({"access_logs": "https://bucket"}))
    with pytest.raises(ConfigError, match=r"(?s)waf_acl_arn attaches to an ALB only.*fix: use kind: alb"):
        validate_profile(_prod_with({"kind": "nlb", "waf_acl_arn": WAF}))


def test_an_imported_vpc_needs_explicit_load_balancer_cidrs():
    from eks_llm_stack.stacks.serving import plan_models

    data = copy.deepcopy(_prod_with({}))
    data["network"] = {"vpc_id": "vpc-0123456789abcdef0", "private_subnet_ids": ["subnet-0a", "subnet-0b"]}
    with pytest.raises(
        ConfigError, match=r"(?s)models\[1\]\.ingress\.allowed_cidrs.*imported VPC.*fix: list the client"
    ):
        plan_models(validate_profile(data))


def test_an_image_pin_with_a_digest_renders_by_digest():
    from dataclasses import replace

    from eks_llm_stack import versions
    from eks_llm_stack.charts.vllm import VllmModel, VllmModelProps, WeightsFromClaim

    digest = "sha256:" + "ab" * 32
    pin = replace(versions.VLLM_IMAGE, digest=digest)
    assert pin.uri == f"vllm/vllm-openai:v0.29.0@{digest}"
    assert versions.VLLM_IMAGE.uri == "vllm/vllm-openai:v0.29.0"
    with pytest.raises(ConfigError, match=r"(?s)digest.*is not an image digest.*fix: pass sha256:"):
        replace(versions.VLLM_IMAGE, digest="latest")
    import cdk8s

    chart = cdk8s.Chart(cdk8s.App(), "c")
    props = VllmModelProps(name="m", namespace="ns", weights=WeightsFromClaim(claim_name="c"), image=pin.uri)
    VllmModel(chart, "m", props=props)
    (deploy,) = [d for d in chart.to_json() if d["kind"] == "Deployment"]
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == f"vllm/vllm-openai:v0.29.0@{digest}"


def test_production_pins_its_weights_and_ami_and_unpinned_ones_are_reported(production_synth, default_synth):
    from eks_llm_stack.stacks.serving import unpinned_weights

    assert unpinned_weights(production_synth.profile) == []
    assert all(p.ami_version != "latest" for p in production_synth.profile.compute.pool_props())
    data = _prod_with({})
    next(m for m in data["models"] if m["name"] == "qwen3-8b")["source"] = "hf://Qwen/Qwen3-8B"
    (line,) = unpinned_weights(validate_profile(data))
    assert "models[1].source" in line and "fix: pin it, hf://Qwen/Qwen3-8B@<40-character commit sha>" in line
    # The warning reaches the synthesized assembly of a non-ephemeral profile.
    warnings = [str(m.entry.data) for s in default_synth.assembly.stacks for m in s.messages]
    assert any("unpinned-ami" in w for w in warnings)
    assert not any("unpinned" in str(m.entry.data) for s in production_synth.assembly.stacks for m in s.messages)


def test_no_pod_installs_packages_at_start_and_no_pod_mounts_an_api_token(any_synth):
    from eks_llm_stack.gates.pod_security import pod_specs

    pods = [p for docs in any_synth.manifests.values() for d in docs for p in pod_specs(d)]
    assert pods
    for pod in pods:
        for c in [*pod.get("initContainers", []), *pod["containers"]]:
            text = json.dumps([c.get("command"), c.get("args")])
            assert "pip install" not in text and "pip3 install" not in text, c["name"]
        assert pod.get("automountServiceAccountToken") is False


def test_the_smoke_test_sends_the_models_key_from_its_secret_never_on_the_command_line(tmp_path, monkeypatch):
    import base64
    import stat

    from eks_llm_stack.cli import build_parser
    from eks_llm_stack.ops.ephemeral.smoke import API_KEY_ENV, bench_argv, model_api_key

    fake = tmp_path / "kubectl"
    encoded = base64.b64encode(b"key-new\nkey-old\n").decode()
    fake.write_text(f"#!/bin/sh\ncase \"$*\" in *llama-api-key*) printf '{encoded}';; esac\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert model_api_key(tmp_path / "kc", "llm-serving", "llama") == "key-new"
    assert model_api_key(tmp_path / "kc", "llm-serving", "sim") is None
    argv = bench_argv(url="http://127.0.0.1:1", model="llama", output_dir=tmp_path, api_key_env=API_KEY_ENV)
    assert "key-new" not in argv and argv[-2:] == ["--api-key-env", API_KEY_ENV]
    args = build_parser().parse_args(argv[argv.index("bench") :])
    assert args.api_key_env == API_KEY_ENV
