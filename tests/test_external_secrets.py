"""External Secrets: least-privilege pod identity role, pinned chart, store and ExternalSecrets valid against ESO v2.9.0."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from eks_llm_stack import versions
from eks_llm_stack.charts.external_secrets import CLUSTER_SECRET_STORE_NAME, ExternalSecretsChartProps, SyncedSecret
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.gates.manifests import validate_manifests


@pytest.fixture(scope="module")
def platform(production_synth) -> Template:
    return Template.from_json(production_synth.template("Platform"))


def _statements(platform: Template, prefix: str) -> list[dict]:
    (policy,) = [p for lid, p in platform.find_resources("AWS::IAM::Policy").items() if lid.startswith(prefix)]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def test_the_controller_role_can_only_assume_the_store_readers(platform: Template) -> None:
    statements = _statements(platform, "ExternalSecretsRoleDefaultPolicy")
    assert {s["Action"] for s in statements} == {"sts:AssumeRole"}
    targets = sorted(
        json.dumps(r)
        for s in statements
        for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    )
    assert len(targets) == 2
    assert "ExternalSecretsMonitoringReaderRole" in targets[0] and "ExternalSecretsReaderRole" in targets[1]


def test_the_serving_reader_reads_the_model_secrets_and_api_keys_only(platform: Template) -> None:
    (read,) = [
        s
        for s in _statements(platform, "ExternalSecretsReaderRoleDefaultPolicy")
        if "secretsmanager:GetSecretValue" in s["Action"]
    ]
    assert sorted(read["Action"]) == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
    resources = [str(r) for r in read["Resource"]]
    assert sum("ModelSecrets" in r for r in resources) == 2
    assert any(r.endswith(":secret:llm-prod/api-key/*") for r in resources)
    assert len(resources) == 3
    assert not any("GrafanaAdmin" in r for r in resources)


def test_the_monitoring_reader_reads_the_grafana_login_only(platform: Template) -> None:
    statements = _statements(platform, "ExternalSecretsMonitoringReaderRoleDefaultPolicy")
    (read,) = [s for s in statements if "secretsmanager:GetSecretValue" in s["Action"]]
    assert "GrafanaAdmin" in str(read["Resource"]) and "ModelSecrets" not in str(read["Resource"]).replace(
        "ModelSecretsKey", ""
    )
    (dec,) = [s for s in statements if s["Action"] == "kms:Decrypt"]
    assert "ModelSecretsKey" in str(dec["Resource"])
    assert len(statements) == 2


def test_readers_trust_only_the_controller_role(platform: Template) -> None:
    for lid, role in platform.find_resources("AWS::IAM::Role").items():
        if lid.startswith(("ExternalSecretsReaderRole", "ExternalSecretsMonitoringReaderRole")):
            (stmt,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
            assert stmt["Action"] == "sts:AssumeRole"
            assert "ExternalSecretsRole" in str(stmt["Principal"])


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


def test_one_store_per_consumer_namespace_each_with_its_own_reader(production_synth) -> None:
    stores = {
        d["metadata"]["name"]: d
        for d in production_synth.manifests["external-secrets"]
        if d["kind"] == "ClusterSecretStore"
    }
    profile = production_synth.profile
    serving, monitoring = stores[CLUSTER_SECRET_STORE_NAME], stores[f"{CLUSTER_SECRET_STORE_NAME}-monitoring"]
    assert serving["spec"]["conditions"] == [{"namespaces": [profile.serving_namespace]}]
    assert monitoring["spec"]["conditions"] == [{"namespaces": [profile.observability.namespace]}]
    assert serving["spec"]["provider"]["aws"]["role"] != monitoring["spec"]["provider"]["aws"]["role"]
    assert "ExternalSecretsReaderRole" in serving["spec"]["provider"]["aws"]["role"]
    grafana = next(
        json.loads(r["Properties"]["Manifest"])[0]
        for lid, r in production_synth.template("Platform")["Resources"].items()
        if lid.startswith("ClustermanifestObservabilityGrafanaAdmin")
    )
    assert grafana["spec"]["secretStoreRef"]["name"] == f"{CLUSTER_SECRET_STORE_NAME}-monitoring"


def test_each_model_syncs_its_api_key_from_its_own_chart(production_synth) -> None:
    for model in ("llama-3-8b", "qwen3-8b", "llama-405b"):
        (es,) = [d for d in production_synth.manifests[f"model-{model}"] if d["kind"] == "ExternalSecret"]
        assert es["metadata"]["name"] == f"{model}-api-key"
        assert es["spec"]["data"] == [{"secretKey": "api-key", "remoteRef": {"key": f"llm-prod/api-key/{model}"}}]
        assert validate_manifests([es]) == []


def test_chart_props_report_every_problem() -> None:
    with pytest.raises(ConfigError, match=r"2 problems(.|\n)*refresh_interval(.|\n)*fix: write 30s"):
        ExternalSecretsChartProps(
            region="us-east-1",
            namespace="Bad_NS",
            refresh_interval="soon",
            secrets=(SyncedSecret(name="a", remote_key="x"),),
        )
