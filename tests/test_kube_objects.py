"""Raw Kubernetes objects and Pod Identity roles built with few jsii round trips, and the same documents.

Each jsii call is a round trip to the Node.js runtime; the helpers batch what they can. These tests pin
that batching changes nothing a reader of the output could see: key order, annotations, numbering of
checkov skips, the trust policy of every role.
"""

from __future__ import annotations

from typing import Any

import cdk8s
import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk.assertions import Template
from constructs import Construct

from eks_llm_stack.charts.kube import api_object, named_object
from eks_llm_stack.constructs.pod_identity import cluster_arn, pod_identity
from eks_llm_stack.gates.checkov import acknowledge_k8s, k8s_skip_annotations

LABELS = {"app.kubernetes.io/name": "demo"}


def _chart() -> cdk8s.Chart:
    return cdk8s.Chart(cdk8s.App(), "c", disable_resource_name_hashes=True)


def test_every_body_field_goes_in_with_one_patch_call_and_keeps_its_key_order(monkeypatch) -> None:
    calls: list[int] = []
    original = cdk8s.ApiObject.add_json_patch

    def counting(self: cdk8s.ApiObject, *ops: Any) -> None:
        calls.append(len(ops))
        original(self, *ops)

    monkeypatch.setattr(cdk8s.ApiObject, "add_json_patch", counting)
    obj = api_object(
        _chart(),
        "cm",
        api_version="v1",
        kind="ConfigMap",
        metadata=cdk8s.ApiObjectMetadata(name="demo"),
        body={"data": {"zeta": "1", "alpha": "2"}, "binaryData": {"y": "AA==", "b": "AA=="}, "immutable": True},
    )
    assert calls == [3]
    doc = obj.to_json()
    # Patches are applied after cdk8s sorts keys: the body keeps the order it was written in.
    assert list(doc) == ["apiVersion", "kind", "metadata", "data", "binaryData", "immutable"]
    assert list(doc["data"]) == ["zeta", "alpha"]
    assert list(doc["binaryData"]) == ["y", "b"]


def test_an_object_without_body_fields_gets_no_patch(monkeypatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(cdk8s.ApiObject, "add_json_patch", lambda self, *ops: calls.append(len(ops)))
    obj = named_object(_chart(), "ns", "v1", "Namespace", "demo", None, LABELS, {})
    assert calls == []
    assert obj.to_json() == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo", "labels": LABELS}}


def test_annotations_given_at_creation_are_the_ones_added_afterwards() -> None:
    chart = _chart()
    annotations = {"zz.example.com/b": "2", "aa.example.com/a": "1", "checkov.io/skip1": "CKV_K8S_11=because"}
    body = {"spec": {"replicas": 1}}
    at_creation = named_object(
        chart, "one", "apps/v1", "Deployment", "demo", "ns", LABELS, body, annotations=annotations
    )
    afterwards = named_object(chart, "two", "apps/v1", "Deployment", "demo", "ns", LABELS, body)
    for key, value in annotations.items():
        afterwards.metadata.add_annotation(key, value)
    assert at_creation.to_json() == afterwards.to_json()
    # cdk8s sorts metadata keys either way: the written order does not leak into the document.
    assert list(at_creation.to_json()["metadata"]["annotations"]) == sorted(annotations)


def test_a_skip_acknowledged_later_is_numbered_after_the_skips_given_at_creation() -> None:
    skips = k8s_skip_annotations({"CKV_K8S_11": "no CPU limit on purpose", "CKV_K8S_15": "images are pinned"})
    obj = named_object(_chart(), "d", "apps/v1", "Deployment", "demo", "ns", LABELS, {}, annotations=skips)
    acknowledge_k8s(obj, "CKV_K8S_43", "images are pinned by version")
    assert obj.to_json()["metadata"]["annotations"] == {
        "checkov.io/skip1": "CKV_K8S_11=no CPU limit on purpose",
        "checkov.io/skip2": "CKV_K8S_15=images are pinned",
        "checkov.io/skip3": "CKV_K8S_43=images are pinned by version",
    }


def _trust_condition(template: Template, role_id: str) -> dict[str, Any]:
    roles = template.find_resources("AWS::IAM::Role")
    (role,) = [r for lid, r in roles.items() if lid.startswith(role_id)]
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == ["sts:AssumeRole", "sts:TagSession"]
    assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    return statement["Condition"]["StringEquals"]


@pytest.mark.parametrize("in_construct", [False, True])
def test_roles_of_one_stack_share_the_cluster_refs_and_each_stack_builds_its_own(in_construct: bool) -> None:
    app = App()
    home = Stack(app, "Home", env=Environment(account="111111111111", region="us-east-1"))
    cluster = eks.Cluster.from_cluster_attributes(home, "Cluster", cluster_name="demo-cluster")
    here = Stack(app, "Here", env=Environment(account="111111111111", region="us-east-1"))
    there = Stack(app, "There", env=Environment(account="222222222222", region="eu-west-1"))
    for stack in (here, there):
        # In the stack itself, or in a construct of it (the helpers then find the stack with Stack.of).
        scope = Construct(stack, "Scope") if in_construct else stack
        for sa in ("alpha", "beta"):
            pod_identity(
                scope,
                f"{sa.title()}Role",
                cluster=cluster,
                namespace="llm-serving",
                service_account=sa,
                description=f"role of {sa}",
                association_id=f"{sa.title()}Association",
            )
    for stack, where in ((here, "us-east-1:111111111111"), (there, "eu-west-1:222222222222")):
        # Each stack's own region and account: the ARN is built where the role is, never exported.
        arn = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":eks:{where}:cluster/demo-cluster"]]}
        template = Template.from_stack(stack)
        for sa in ("alpha", "beta"):
            cond = _trust_condition(template, f"{'Scope' if in_construct else ''}{sa.title()}Role")
            assert cond == {
                "aws:RequestTag/eks-cluster-arn": arn,
                "aws:RequestTag/kubernetes-namespace": "llm-serving",
                "aws:RequestTag/kubernetes-service-account": sa,
            }
        associations = template.find_resources("AWS::EKS::PodIdentityAssociation")
        assert sorted(a["Properties"]["ServiceAccount"] for a in associations.values()) == ["alpha", "beta"]
        assert {a["Properties"]["ClusterName"] for a in associations.values()} == {"demo-cluster"}
        assert stack.resolve(cluster_arn(stack, cluster)) == arn


def test_a_shared_body_is_sent_once_and_only_an_identical_one_reuses_it(monkeypatch) -> None:
    sent: list[tuple[str, Any]] = []
    original = cdk8s.JsonPatch.add

    def counting(path: str, value: Any) -> cdk8s.JsonPatch:
        sent.append((path, value))
        return original(path, value)

    monkeypatch.setattr(cdk8s.JsonPatch, "add", staticmethod(counting))
    monkeypatch.setattr("eks_llm_stack.charts.kube._SHARED_PATCHES", {})
    chart = _chart()
    same = {"automountServiceAccountToken": False}
    one = named_object(chart, "one", "v1", "ServiceAccount", "one", "ns", LABELS, same, shared_body=True)
    two = named_object(chart, "two", "v1", "ServiceAccount", "two", "ns", LABELS, dict(same), shared_body=True)
    # Same keys in another order, or another value: a patch of its own (order is part of the document).
    three = named_object(
        chart, "three", "v1", "ConfigMap", "c3", "ns", LABELS, {"data": {"b": "1", "a": "2"}}, shared_body=True
    )
    four = named_object(
        chart, "four", "v1", "ConfigMap", "c4", "ns", LABELS, {"data": {"a": "2", "b": "1"}}, shared_body=True
    )
    five = named_object(
        chart,
        "five",
        "v1",
        "ServiceAccount",
        "five",
        "ns",
        LABELS,
        {"automountServiceAccountToken": True},
        shared_body=True,
    )
    assert [p for p, _ in sent] == ["/automountServiceAccountToken", "/data", "/data", "/automountServiceAccountToken"]
    assert one.to_json()["automountServiceAccountToken"] is False
    assert two.to_json()["automountServiceAccountToken"] is False
    assert list(three.to_json()["data"]) == ["b", "a"]
    assert list(four.to_json()["data"]) == ["a", "b"]
    assert five.to_json()["automountServiceAccountToken"] is True
