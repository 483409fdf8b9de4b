"""Stacks split by lifecycle: names, order, tags, and what may reference what."""

from __future__ import annotations

import json

import pytest

from eks_llm_stack.config import validate_profile
from eks_llm_stack.stacks.base import TAG_EPHEMERAL, TAG_EXPIRES_AT, TAG_PROFILE
from eks_llm_stack.synth import build


def _stack_tags(synth, role: str) -> dict[str, str]:
    art = synth.assembly.get_stack_by_name(f"{synth.profile.stack_prefix}-{role}")
    return dict(art.tags)


def test_four_stacks_named_after_the_prefix(default_synth) -> None:
    assert sorted(default_synth.templates) == ["Llm-Data", "Llm-Network", "Llm-Platform", "Llm-Serving"]


def test_deploy_order_is_network_data_platform_serving(default_synth) -> None:
    deps = {s.stack_name: {d.stack_name for d in s.dependencies} for s in default_synth.built.platform.stacks}
    assert deps["Llm-Data"] == {"Llm-Network"}
    assert "Llm-Data" in deps["Llm-Platform"]
    assert "Llm-Platform" in deps["Llm-Serving"]


@pytest.mark.parametrize("role", ["Network", "Data"])
def test_earlier_stacks_never_import_from_later_ones(any_synth, role: str) -> None:
    text = json.dumps(any_synth.template(role))
    later = {"Network": ("Data", "Platform", "Serving"), "Data": ("Platform", "Serving")}[role]
    for other in later:
        assert f"{any_synth.profile.stack_prefix}-{other}:" not in text


def test_every_stack_is_tagged_with_the_profile(any_synth) -> None:
    for role in ("Network", "Data", "Platform", "Serving"):
        tags = _stack_tags(any_synth, role)
        assert tags[TAG_PROFILE] == any_synth.profile.name
        for key, value in any_synth.profile.tags.items():
            assert tags[key] == value


def test_ephemeral_stacks_carry_the_ephemeral_and_expiry_tags(cdk_context) -> None:
    from aws_cdk import App

    ci_role = "arn:aws:iam::123456789012:role/eks-llm-stack-ci"
    app = App(
        context={
            **cdk_context,
            "expires_at": "2026-11-21T18:00:00Z",
            "name": "ci-42",
            "deployment_id": "0123456789abcdef",
            "admin_arns": ci_role,
        }
    )
    built = build("ci-ephemeral", app=app)
    assembly = app.synth()
    # '-' before a digit is kept, so 'ci-42' and 'ci4-2' can never share stacks.
    stack = assembly.get_stack_by_name("Ci-42-Platform")
    assert stack.tags[TAG_EPHEMERAL] == "true"
    assert stack.tags[TAG_EXPIRES_AT] == "2026-11-21T18:00:00Z"
    assert stack.tags["eks-llm-stack:deployment-id"] == "0123456789abcdef"
    assert stack.template["Outputs"]["EphemeralDeploymentId"]["Value"] == "0123456789abcdef"
    assert built.profile.prefix == "ci-42"
    assert built.profile.cluster_name == "ci-42-cluster"
    # The CI role gets cluster access (an access entry), so 'up' can wait for the model.
    assert ci_role in built.profile.cluster.admins and ci_role in json.dumps(stack.template)


def test_non_ephemeral_stacks_have_no_ephemeral_tag(default_synth) -> None:
    assert TAG_EPHEMERAL not in _stack_tags(default_synth, "Platform")


def test_data_stack_is_termination_protected_unless_ephemeral(default_synth, ephemeral_synth) -> None:
    assert default_synth.stack("Data").termination_protection is True
    assert ephemeral_synth.stack("Data").termination_protection is False


def test_stacks_are_environment_agnostic_without_account(default_synth, production_synth) -> None:
    net = default_synth.assembly.get_stack_by_name("Llm-Network")
    assert net.environment.account == "unknown-account"
    prod = production_synth.assembly.get_stack_by_name("LlmProd-Network")
    assert (prod.environment.account, prod.environment.region) == ("123456789012", "us-east-1")


def test_an_empty_lifecycle_stack_still_deploys(default_synth) -> None:
    resources = default_synth.template("Serving")["Resources"]
    assert resources, "CloudFormation refuses a stack without resources"


def test_namespaces_chart_creates_the_serving_namespace_with_restricted_pod_security(default_synth) -> None:
    (ns,) = [d for d in default_synth.manifests["namespaces"] if d["metadata"]["name"] == "llm-serving"]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_name_override_is_validated() -> None:
    from eks_llm_stack.errors import ConfigError
    from eks_llm_stack.synth import resolve_profile

    with pytest.raises(ConfigError, match=r"with name 'Bad_Name'[\s\S]*prefix: 'Bad_Name' is not a usable prefix"):
        resolve_profile("default", name_override="Bad_Name")


def test_profile_built_in_python_by_another_repository(cdk_context) -> None:
    from aws_cdk import App

    profile = validate_profile({"prefix": "team-a", "cluster": {"admins": ["arn:aws:iam::111122223333:role/a"]}})
    built = build(profile, app=App(context=cdk_context))
    assert [s.stack_name for s in built.platform.stacks] == [
        "TeamA-Network",
        "TeamA-Data",
        "TeamA-Platform",
        "TeamA-Serving",
    ]
