"""The Serving stack: profile models become sized, validated charts; bad models fail at synth with fixes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from aws_cdk import App
from aws_cdk.assertions import Match, Template

from eks_llm_stack import versions
from eks_llm_stack.config import load_profile, validate_profile
from eks_llm_stack.config.profile import PROFILE_DIR
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.gates.cfn_lint import embedded_manifests, lint_template
from eks_llm_stack.gates.manifests import validate_manifests
from eks_llm_stack.stacks.serving import plan_models

PROD = "production.example"


def prod_data() -> dict[str, Any]:
    data = yaml.safe_load((PROFILE_DIR / f"{PROD}.yaml").read_text())
    data["name"] = PROD
    return data


def with_models(*models: dict[str, Any], base: dict[str, Any] | None = None) -> Any:
    data = copy.deepcopy(base or prod_data())
    data["models"] = list(models)
    return validate_profile(data)


def problems(*models: dict[str, Any], base: dict[str, Any] | None = None) -> str:
    with pytest.raises(ConfigError) as err:
        plan_models(with_models(*models, base=base))
    return str(err.value)


# -- the shipped profiles -----------------------------------------------------------------------


def test_every_model_manifest_validates_against_schemas_and_crds(any_synth) -> None:
    docs = [d for name, ds in any_synth.manifests.items() if name.startswith("model-") for d in ds]
    assert validate_manifests(docs) == []


def test_serving_template_manifests_validate(any_synth) -> None:
    docs = [d for _, d in embedded_manifests(any_synth.template("Serving"))]
    assert validate_manifests(docs) == []


def test_serving_template_passes_cfn_lint(production_synth) -> None:
    assert [str(f) for f in lint_template(production_synth.template("Serving"), "Serving")] == []


def test_no_unacknowledged_nag_findings_in_serving_parts(production_synth) -> None:
    from eks_llm_stack.gates.nag import nag_report

    found = [str(v) for role in ("Serving", "Platform") for v in nag_report(production_synth.stack(role))]
    assert [f for f in found if "Serving" in f] == []


def test_production_serves_three_models_one_chart_each(production_synth) -> None:
    assert {n for n in production_synth.manifests if n.startswith("model-")} == {
        "model-llama-3-8b",
        "model-qwen3-8b",
        "model-llama-405b",
    }


def test_production_405b_is_multi_node_on_the_training_pool(production_synth) -> None:
    d = production_synth.stack("Serving").models["llama-405b"]
    assert (d.plan.instance_type, d.plan.tensor_parallel_size, d.plan.pipeline_parallel_size) == ("p5.48xlarge", 8, 2)
    assert [p.name for p in d.pools] == ["training"]
    lws = next(x for x in production_synth.manifests["model-llama-405b"] if x["kind"] == "LeaderWorkerSet")
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == 2


def test_production_8b_runs_on_both_inference_pools(production_synth) -> None:
    d = production_synth.stack("Serving").models["llama-3-8b"]
    assert {p.name for p in d.pools} == {"inference-spot", "inference-on-demand"}
    assert d.model.args[: len(d.plan.vllm_args)] == d.plan.vllm_args


def test_a_changed_source_gets_a_new_fetch_job_and_directory() -> None:
    a, b = (plan_models(with_models({**LLAMA, "source": src}))[0] for src in ("s3://bucket/v1", "s3://bucket/v2"))
    assert a.fetch.name != b.fetch.name
    assert a.model.weights.path != b.model.weights.path
    assert a.model.weights.path == a.fetch.target_dir


def test_s3_model_is_fetched_once_into_the_cache_by_a_job(production_synth) -> None:
    docs = production_synth.manifests["model-llama-3-8b"]
    job = next(x for x in docs if x["kind"] == "Job")
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "llama-3-8b"
    assert {"name": "SOURCE", "value": "s3://llm-prod-models/llama-3.1-8b-instruct"} in job["spec"]["template"]["spec"][
        "containers"
    ][0]["env"]


def test_s3_model_reads_only_its_prefix_through_pod_identity(production_synth) -> None:
    t = Template.from_json(production_synth.template("Serving"))
    t.has_resource_properties(
        "AWS::EKS::PodIdentityAssociation", {"Namespace": "llm-serving", "ServiceAccount": "llama-3-8b"}
    )
    t.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "s3:GetObject",
                                "Resource": Match.string_like_regexp("llama-3.1-8b-instruct/\\*"),
                            }
                        )
                    ]
                )
            }
        },
    )


def test_autoscaled_models_get_a_scaled_object(production_synth) -> None:
    so = next(x for x in production_synth.manifests["model-llama-3-8b"] if x["kind"] == "ScaledObject")
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (1, 4)


def test_ingress_model_gets_an_internal_https_alb(production_synth) -> None:
    ing = next(x for x in production_synth.manifests["model-qwen3-8b"] if x["kind"] == "Ingress")
    ann = ing["metadata"]["annotations"]
    assert ann["alb.ingress.kubernetes.io/scheme"] == "internal"
    assert ann["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTPS": 443}]'


def test_controllers_are_installed_pinned_on_system_nodes(production_synth) -> None:
    t = Template.from_json(production_synth.template("Platform"))
    for pin in (versions.KEDA, versions.AWS_LOAD_BALANCER_CONTROLLER):
        t.has_resource_properties("Custom::AWSCDK-EKS-HelmChart", {"Chart": pin.chart, "Version": pin.version})
    t.has_resource_properties(
        "Custom::AWSCDK-EKS-HelmChart",
        {"Repository": f"{versions.LWS.repository}/{versions.LWS.chart}", "Version": versions.LWS.version},
    )
    charts = t.find_resources("Custom::AWSCDK-EKS-HelmChart", {"Properties": {"Release": "keda"}})
    (keda,) = charts.values()
    assert '"eks-llm-stack.io/system":"true"' in str(keda["Properties"]["Values"]).replace(" ", "")


def test_load_balancer_controller_has_a_pod_identity_role(production_synth) -> None:
    t = Template.from_json(production_synth.template("Platform"))
    t.has_resource_properties(
        "AWS::EKS::PodIdentityAssociation",
        {"Namespace": "kube-system", "ServiceAccount": "aws-load-balancer-controller"},
    )


def test_ci_profile_serves_the_simulator(ephemeral_synth) -> None:
    dep = next(x for x in ephemeral_synth.manifests["model-sim"] if x["kind"] == "Deployment")
    assert dep["spec"]["template"]["spec"]["nodeSelector"] == {"eks-llm-stack.io/system": "true"}


def test_a_profile_with_gpu_pools_is_ready_for_models_before_it_has_any(default_synth) -> None:
    # Controllers come with the GPU pools, not with the first model: adding it then touches only Serving.
    assert default_synth.profile.compute.enabled and not default_synth.profile.models
    assert not [n for n in default_synth.manifests if n.startswith("model-")]
    t = Template.from_json(default_synth.template("Platform"))
    t.has_resource_properties("Custom::AWSCDK-EKS-HelmChart", {"Release": "keda"})
    t.has_resource_properties("Custom::AWSCDK-EKS-HelmChart", {"Release": "lws"})


def test_no_gpu_pools_and_no_models_means_no_serving_controllers(cdk_context) -> None:
    from eks_llm_stack.synth import build

    built = build(
        validate_profile({"name": "bare"}), app=App(context=cdk_context, builtin_cloud_formation_validation=False)
    )
    releases = Template.from_stack(built.platform.platform).find_resources("Custom::AWSCDK-EKS-HelmChart")
    assert {r["Properties"]["Release"] for r in releases.values()}.isdisjoint(
        {"lws", "keda", "aws-load-balancer-controller"}
    )


# -- adding a model changes only the Serving stack ------------------------------------------------


@pytest.mark.parametrize(
    ("api_key", "stacks"),
    # With its API key (the default) the model adds its key secret to the Data stack; the
    # Platform stack's External Secrets reader covers every key by prefix, so it does not change.
    [(True, ["LlmProd-Data", "LlmProd-Serving"]), (False, ["LlmProd-Serving"])],
)
def test_adding_a_model_changes_only_the_serving_stack(production_synth, cdk_context, api_key, stacks) -> None:
    from eks_llm_stack.synth import build

    data = prod_data()
    data["models"].append(
        {
            "name": "mistral-7b",
            "source": "hf://mistralai/Mistral-7B-Instruct-v0.3",
            "model": "mistral-7b",
            "api_key": api_key,
        }
    )
    app = App(context=cdk_context, builtin_cloud_formation_validation=False)
    build(validate_profile(data), app=app)
    after = {s.stack_name: s.template for s in app.synth().stacks}
    before = production_synth.templates
    changed = sorted(name for name in before if before[name] != after[name])
    assert changed == stacks


# -- bad input: clear synth-time errors with the fix -----------------------------------------------

LLAMA = {"name": "llama", "source": "s3://bucket/llama", "model": "llama-3.1-8b"}


def test_min_above_max_is_refused() -> None:
    with pytest.raises(
        ConfigError,
        match=r"models\[0\]\.replicas: min replicas \(3\) is greater than max replicas \(2\).*\n.*fix: raise max",
    ):
        with_models({**LLAMA, "replicas": {"min": 3, "max": 2}})


def test_source_that_is_not_s3_hf_or_pvc_is_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"models\[0\]\.source: 'https://example.com/m' is not a model source.*\n.*fix: write s3://"
    ):
        with_models({**LLAMA, "source": "https://example.com/m"})


def test_name_that_is_not_a_dns_label_is_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"models\[0\]\.name: 'Llama_3' is not a valid model name.*\n.*fix: use lowercase"
    ):
        with_models({**LLAMA, "name": "Llama_3"})


def test_duplicate_names_are_refused() -> None:
    text = problems(LLAMA, {**LLAMA, "source": "hf://meta-llama/Llama-3.1-8B-Instruct"})
    assert "models: model names ['llama'] are used more than once" in text
    assert "fix: give every model a different name" in text


def test_tp_larger_than_the_pools_gpus_per_node_is_refused() -> None:
    text = problems({**LLAMA, "pool": "inference-spot", "tensor_parallel_size": 16})
    assert (
        "models[0].tensor_parallel_size: is larger than the GPUs per node of pool 'inference-spot' (at most 8)" in text
    )
    assert "fix: use at most 8" in text


def test_tp_larger_than_the_pinned_instance_is_refused() -> None:
    text = problems({**LLAMA, "instance_type": "g6e.xlarge", "tensor_parallel_size": 4})
    assert "models[0].tensor_parallel_size: does not fit" in text
    assert "exceeds the 1 GPUs of g6e.xlarge" in text


def test_model_that_fits_none_of_the_pools_instances_is_refused() -> None:
    base = prod_data()
    base["compute"]["pools"].append(
        {"name": "small", "preset": "inference", "families": None, "instance_types": ["g6.xlarge"]}
    )
    text = problems({"name": "big", "source": "s3://bucket/m", "model": "llama-3.1-70b", "pool": "small"}, base=base)
    assert "models[0].model: does not fit pool 'small' (g6.xlarge)" in text
    assert "fits no configuration" in text


def test_instance_type_outside_the_pool_is_refused() -> None:
    text = problems({**LLAMA, "pool": "training", "instance_type": "g6e.xlarge"})
    assert "models[0].instance_type: is not an instance type pool 'training' launches (p5.48xlarge)" in text


def test_multi_node_model_on_a_pool_without_efa_is_refused() -> None:
    base = prod_data()
    base["compute"]["pools"].append(
        {"name": "big-no-efa", "preset": "custom", "instance_types": ["p5.48xlarge"], "capacity_types": ["on-demand"]}
    )
    text = problems(
        {
            "name": "huge",
            "source": "pvc://model-cache-fsx/m",
            "model": "llama-3.1-405b",
            "pool": "big-no-efa",
            "multi_node": True,
        },
        base=base,
    )
    assert (
        "models[0].pool: a multi-node model (2 nodes of p5.48xlarge) needs pools with EFA and a placement group" in text
    )
    assert "fix: put it on an EFA pool with a cluster placement group" in text


def test_grace_period_beyond_the_spot_notice_is_refused() -> None:
    text = problems({**LLAMA, "termination_grace_seconds": 300})
    assert "models[0].termination_grace_seconds: exceeds the 120-second spot interruption notice" in text


def test_multi_node_assertion_on_a_single_node_plan_is_refused() -> None:
    text = problems({**LLAMA, "pool": "training", "multi_node": True})
    assert "models[0].multi_node: the plan fits one node" in text
    assert "fix: remove multi_node, or pin pipeline_parallel_size: 2 or more" in text


def test_unknown_pool_is_refused() -> None:
    text = problems({**LLAMA, "pool": "inferense"})
    assert "models[0].pool: names no pool of compute.pools: ['inferense']" in text


def test_s3_source_without_an_architecture_is_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"models\[0\]: the architecture of a s3:// source is unknown.*\n.*fix: add model:"
    ):
        with_models({"name": "x", "source": "s3://bucket/x"})


def test_every_problem_of_every_model_is_reported_at_once() -> None:
    text = problems(
        {**LLAMA, "pool": "inferense"},
        {**LLAMA, "name": "b", "termination_grace_seconds": 300},
        {**LLAMA, "name": "c", "pool": "training", "multi_node": True},
    )
    assert "3 problems" in text
    assert "models[0].pool" in text and "models[1].termination_grace_seconds" in text and "models[2].multi_node" in text


def test_model_without_a_gpu_pool_is_refused() -> None:
    data = prod_data()
    data.pop("compute")
    text = problems(LLAMA, base=data)
    assert "models[0].pool: the profile has no GPU pool to run the model on" in text
    assert "or use engine: simulator" in text


def test_shipped_profiles_plan_cleanly() -> None:
    for name in ("production.example", "ci-ephemeral", "default"):
        plan_models(load_profile(name))
