"""The Observability construct in a small stack of its own: Helm values, secrets, managed options, cfn-lint."""

from __future__ import annotations

import json

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk.assertions import Match, Template
from aws_cdk.lambda_layer_kubectl_v35 import KubectlV35Layer

from eks_llm_stack import versions
from eks_llm_stack.config import ObservabilityConfig
from eks_llm_stack.constructs.observability import (
    GRAFANA_ADMIN_SECRET,
    Observability,
    ObservabilityProps,
    grafana_admin_external_secret,
    storage_class_manifest,
)
from eks_llm_stack.conventions import SYSTEM_NODE_LABEL, SYSTEM_TAINT_KEY
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.gates.manifests import validate_manifests

HELM = "Custom::AWSCDK-EKS-HelmChart"
MANIFEST = "Custom::AWSCDK-EKS-KubernetesResource"


def build(app: App, name: str, props: ObservabilityProps) -> Stack:
    stack = Stack(app, name, env=Environment(account="123456789012", region="us-east-1"))
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=1)
    cluster = eks.Cluster(
        stack,
        "Cluster",
        version=eks.KubernetesVersion.V1_35,
        vpc=vpc,
        default_capacity_type=eks.DefaultCapacityType.NODEGROUP,
        default_capacity=0,
        kubectl_provider_options=eks.KubectlProviderOptions(kubectl_layer=KubectlV35Layer(stack, "Kubectl")),
    )
    Observability(stack, "Observability", cluster=cluster, props=props)
    return stack


@pytest.fixture(scope="module")
def stacks() -> dict[str, Template]:
    app = App()
    in_cluster = build(
        app,
        "InCluster",
        ObservabilityProps(secret_store_name="aws-secrets-manager", grafana_admin_secret="llm/grafana-admin"),
    )
    managed = build(
        app,
        "Managed",
        ObservabilityProps(
            secret_store_name="aws-secrets-manager",
            managed_prometheus=True,
            managed_grafana=True,
            container_insights=True,
            retention="2d",
        ),
    )
    return {"in_cluster": Template.from_stack(in_cluster), "managed": Template.from_stack(managed)}


def helm_values(template: Template) -> dict:
    (chart,) = template.find_resources(HELM).values()
    values = chart["Properties"]["Values"]
    if isinstance(values, dict):  # Fn::Join around tokens: join with placeholders
        values = "".join(p if isinstance(p, str) else "TOKEN" for p in values["Fn::Join"][1])
    return json.loads(values)


def manifests(template: Template) -> list[dict]:
    out = []
    for res in template.find_resources(MANIFEST).values():
        out += json.loads(res["Properties"]["Manifest"])
    return out


def test_installs_the_pinned_kube_prometheus_stack(stacks):
    stacks["in_cluster"].has_resource_properties(
        HELM,
        {
            "Chart": "kube-prometheus-stack",
            "Repository": versions.KUBE_PROMETHEUS_STACK.repository,
            "Version": versions.KUBE_PROMETHEUS_STACK.version,
            "Namespace": "monitoring",
            "Release": "kube-prometheus-stack",
        },
    )


def test_prometheus_retention_and_gp3_volume_come_from_props(stacks):
    spec = helm_values(stacks["in_cluster"])["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "15d"
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["storageClassName"] == "monitoring-gp3"
    assert claim["resources"]["requests"]["storage"] == "50Gi"
    (sc,) = [m for m in manifests(stacks["in_cluster"]) if m["kind"] == "StorageClass"]
    assert sc["parameters"] == {"type": "gp3", "encrypted": "true"}


def test_everything_runs_on_the_system_node_group(stacks):
    values = helm_values(stacks["in_cluster"])
    wanted = {
        "nodeSelector": {SYSTEM_NODE_LABEL: "true"},
        "tolerations": [{"key": SYSTEM_TAINT_KEY, "operator": "Exists"}],
    }
    for part in (
        values["prometheusOperator"],
        values["prometheus"]["prometheusSpec"],
        values["alertmanager"]["alertmanagerSpec"],
        values["grafana"],
        values["kube-state-metrics"],
    ):
        assert wanted.items() <= part.items()


def test_selectors_pick_up_monitors_and_rules_from_every_namespace(stacks):
    spec = helm_values(stacks["in_cluster"])["prometheus"]["prometheusSpec"]
    for kind in ("rule", "serviceMonitor", "podMonitor"):
        assert spec[f"{kind}SelectorNilUsesHelmValues"] is False
        assert spec[f"{kind}Selector"] == {} and spec[f"{kind}NamespaceSelector"] == {}


def test_grafana_admin_comes_from_secrets_manager_through_external_secrets(stacks):
    grafana = helm_values(stacks["in_cluster"])["grafana"]
    assert grafana["admin"] == {
        "existingSecret": GRAFANA_ADMIN_SECRET,
        "userKey": "admin-user",
        "passwordKey": "admin-password",
    }
    assert "adminPassword" not in grafana
    (es,) = [m for m in manifests(stacks["in_cluster"]) if m["kind"] == "ExternalSecret"]
    assert es["spec"]["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": "aws-secrets-manager"}
    assert {d["remoteRef"]["key"] for d in es["spec"]["data"]} == {"llm/grafana-admin"}
    assert es["spec"]["target"]["name"] == GRAFANA_ADMIN_SECRET


def test_grafana_sidecar_loads_dashboard_config_maps(stacks):
    sidecar = helm_values(stacks["in_cluster"])["grafana"]["sidecar"]["dashboards"]
    assert (sidecar["enabled"], sidecar["label"], sidecar["labelValue"]) == (True, "grafana_dashboard", "1")


def test_in_cluster_manifests_validate(stacks):
    assert validate_manifests(manifests(stacks["in_cluster"])) == []


def test_external_secret_validates_against_the_crd():
    es = grafana_admin_external_secret(namespace="monitoring", store_name="aws-secrets-manager", remote_key="x/y")
    assert validate_manifests([es, storage_class_manifest("monitoring-gp3")]) == []


def test_no_managed_services_by_default(stacks):
    t = stacks["in_cluster"]
    t.resource_count_is("AWS::APS::Workspace", 0)
    t.resource_count_is("AWS::Grafana::Workspace", 0)
    t.resource_properties_count_is("AWS::EKS::Addon", {"AddonName": "amazon-cloudwatch-observability"}, 0)


def test_managed_prometheus_workspace_and_scoped_remote_write(stacks):
    t = stacks["managed"]
    t.resource_count_is("AWS::APS::Workspace", 1)
    (ws_id,) = t.find_resources("AWS::APS::Workspace")
    t.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": [
                    {"Action": "aps:RemoteWrite", "Effect": "Allow", "Resource": {"Fn::GetAtt": [ws_id, "Arn"]}}
                ]
            }
        },
    )
    t.has_resource_properties(
        "AWS::EKS::PodIdentityAssociation", {"Namespace": "monitoring", "ServiceAccount": "prometheus"}
    )
    t.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    Match.object_like(
                        {
                            "Action": ["sts:AssumeRole", "sts:TagSession"],
                            "Principal": {"Service": "pods.eks.amazonaws.com"},
                        }
                    )
                ]
            }
        },
    )


def test_prometheus_remote_writes_to_the_workspace_with_sigv4(stacks):
    (chart,) = stacks["managed"].find_resources(HELM).values()
    parts = chart["Properties"]["Values"]["Fn::Join"][1]
    (ws_id,) = stacks["managed"].find_resources("AWS::APS::Workspace")
    assert {"Fn::GetAtt": [ws_id, "PrometheusEndpoint"]} in parts
    values = helm_values(stacks["managed"])
    (rw,) = values["prometheus"]["prometheusSpec"]["remoteWrite"]
    assert rw == {"url": "TOKENapi/v1/remote_write", "sigv4": {"region": "us-east-1"}}
    assert values["prometheus"]["serviceAccount"]["name"] == "prometheus"


def test_managed_grafana_replaces_the_in_cluster_one(stacks):
    t = stacks["managed"]
    assert helm_values(t)["grafana"] == {"enabled": False}
    assert not [m for m in manifests(t) if m["kind"] == "ExternalSecret"]
    t.has_resource_properties(
        "AWS::Grafana::Workspace",
        {"AccountAccessType": "CURRENT_ACCOUNT", "PermissionType": "CUSTOMER_MANAGED", "DataSources": ["PROMETHEUS"]},
    )


def test_container_insights_add_on_with_pod_identity(stacks):
    stacks["managed"].has_resource_properties(
        "AWS::EKS::Addon",
        {
            "AddonName": "amazon-cloudwatch-observability",
            "PodIdentityAssociations": [Match.object_like({"ServiceAccount": "cloudwatch-agent"})],
        },
    )


def test_managed_template_passes_cfn_lint(stacks):
    from cfnlint.api import ManualArgs, lint

    template = json.dumps(stacks["managed"].to_json())
    # The stack's own region: AMP and AMG are not offered in every region cfn-lint knows.
    matches = lint(template, config=ManualArgs(regions=["us-east-1"]))
    errors = [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches if m.rule.id.startswith("E")]
    assert errors == []


def test_props_from_the_profile():
    props = ObservabilityProps.from_config(
        ObservabilityConfig(retention="30d", storage_gib=200, managed=True), secret_store_name="store"
    )
    assert (props.retention, props.storage_gib, props.managed_prometheus, props.managed_grafana) == (
        "30d",
        200,
        True,
        True,
    )


def test_bad_props_are_reported_together():
    with pytest.raises(
        ConfigError,
        match=r"(?s)4 problems.*namespace: is not a valid Kubernetes name \(got 'Monitoring'\)"
        r".*retention: 'forever' is not a retention duration.*fix: write a whole number"
        r".*storage_gib: is outside 10..16384 GiB \(got 1\)"
        r".*grafana_admin_secret: is required for the in-cluster Grafana.*fix: name the Secrets Manager secret",
    ):
        ObservabilityProps(secret_store_name="store", namespace="Monitoring", retention="forever", storage_gib=1)


def test_managed_grafana_needs_managed_prometheus():
    with pytest.raises(
        ConfigError, match=r"(?s)managed_grafana: Amazon Managed Grafana needs.*fix: set managed_prometheus=True"
    ):
        ObservabilityProps(secret_store_name="store", managed_grafana=True)


def test_profile_section_reports_every_bad_value():
    from eks_llm_stack.config import validate_profile

    with pytest.raises(
        ConfigError,
        match=r"(?s)3 problems.*observability.retention: retention '30m' is shorter than an hour.*fix: keep at least 1h"
        r".*observability.scrape_interval: scrape interval '1s' is outside 5s..5m.*fix: use a value such as 15s"
        r".*observability.managd: unknown key.*fix: did you mean 'managed'",
    ):
        validate_profile({"observability": {"retention": "30m", "scrape_interval": "1s", "managd": True}})
