"""External Secrets: least-privilege pod identity role, pinned chart, store and ExternalSecrets valid against ESO v2.9.0."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from eks_llm_stack import versions
from eks_llm_stack.charts.external_secrets import CLUSTER_SECRET_STORE_NAME, ExternalSecretsChartProps, SyncedSecret
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.gates.manifests import validate_manifests


@pytest.fixture(scope="module")
def platform(production_synth) -> Template:
    return Template.from_json(production_synth.template("Platform"))


def _eso_statements(platform: Template) -> list[dict]:
    (policy,) = [
        p for lid, p in platform.find_resources("AWS::IAM::Policy").items() if lid.startswith("ExternalSecretsRole")
    ]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def test_role_reads_exactly_the_model_secrets_and_the_grafana_login(platform: Template) -> None:
    (read,) = [s for s in _eso_statements(platform) if "secretsmanager:GetSecretValue" in s["Action"]]
    assert sorted(read["Action"]) == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
    resources = [str(r) for r in read["Resource"]]
    assert len(resources) == 3
    assert sum("ModelSecrets" in r for r in resources) == 2
    assert sum("GrafanaAdmin" in r for r in resources) == 1


def test_role_decrypts_with_the_secrets_key_only(platform: Template) -> None:
    (dec,) = [s for s in _eso_statements(platform) if s["Action"] == "kms:Decrypt"]
    assert "ModelSecretsKey" in str(dec["Resource"])


def test_role_has_no_other_permissions(platform: Template) -> None:
    assert len(_eso_statements(platform)) == 2


def test_pod_identity_association_binds_the_controller(platform: Template) -> None:
    platform.has_resource_properties(
        "AWS::EKS::PodIdentityAssociation", {"Namespace": "external-secrets", "ServiceAccount": "external-secrets"}
    )


def test_chart_is_pinned_and_on_system_nodes(platform: Template) -> None:
    pin = versions.EXTERNAL_SECRETS
    platform.has_resource_properties(
        "Custom::AWSCDK-EKS-HelmChart",
        {
            "Chart": pin.chart,
            "Version": pin.version,
            "Repository": pin.repository,
            "Values": Match.string_like_regexp('"nodeSelector":\\{"eks-llm-stack.io/system":"true"\\}'),
        },
    )


def test_manifests_validate_against_the_eso_crds(production_synth) -> None:
    docs = production_synth.manifests["external-secrets"]
    assert {d["kind"] for d in docs} == {"ClusterSecretStore", "ExternalSecret"}
    assert validate_manifests(docs) == []


def test_validation_catches_a_bad_external_secret(production_synth) -> None:
    doc = next(d for d in production_synth.manifests["external-secrets"] if d["kind"] == "ExternalSecret")
    broken = {**doc, "spec": {**doc["spec"], "refreshIntervall": "1h"}}
    assert any("refreshIntervall" in e for e in validate_manifests([broken]))


def test_one_external_secret_per_secret_into_the_serving_namespace(production_synth) -> None:
    es = [d for d in production_synth.manifests["external-secrets"] if d["kind"] == "ExternalSecret"]
    assert {d["metadata"]["name"] for d in es} == {"huggingface-token", "ngc-api-key"}
    assert {d["metadata"]["namespace"] for d in es} == {production_synth.profile.serving_namespace}
    assert {d["spec"]["refreshInterval"] for d in es} == {"15m"}
    assert {d["spec"]["secretStoreRef"]["name"] for d in es} == {CLUSTER_SECRET_STORE_NAME}


def test_store_is_limited_to_the_serving_and_monitoring_namespaces(production_synth) -> None:
    store = next(d for d in production_synth.manifests["external-secrets"] if d["kind"] == "ClusterSecretStore")
    profile = production_synth.profile
    assert store["spec"]["conditions"] == [{"namespaces": [profile.serving_namespace, profile.observability.namespace]}]


def test_chart_props_report_every_problem() -> None:
    with pytest.raises(ConfigError, match=r"2 problems(.|\n)*refresh_interval(.|\n)*fix: write 30s"):
        ExternalSecretsChartProps(
            region="us-east-1",
            namespace="Bad_NS",
            refresh_interval="soon",
            secrets=(SyncedSecret(name="a", remote_key="x"),),
        )
